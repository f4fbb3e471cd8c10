/*
 * fake_go - a C program carrying a ".go.buildinfo" section, the mark of a
 * Go binary: hive-run --fresh must refuse it as it refuses Go programs
 * (Go reads its environment once at start and never calls getenv()).
 */
#include <stdio.h>

__attribute__((section(".go.buildinfo"), used)) static const char buildinfo[32] = "\xff Go buildinf:";

int main(void)
{
    puts("fake_go ran");
    return 0;
}
