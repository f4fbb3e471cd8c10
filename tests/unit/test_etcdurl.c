/*
 * The etcd storage's URL parser (store/src/etcdurl.c): what it takes, and
 * every kind of bad input refused with a message that says what is wrong.
 */
#include "testutil.h"

#include "etcdurl.h"

static hive__etcd_url parse_ok(const char *url)
{
    hive__etcd_url u;

    cr_assert_eq(hive__etcd_url_parse(&u, url), HIVE_OK, "%s: %s", url, hive_last_error());
    cr_expect_str_eq(hive_last_error(), "");
    return u;
}

/* url is refused, with a message holding want. */
static void refused(const char *url, const char *want)
{
    hive__etcd_url u;

    memset(&u, 0x5a, sizeof(u));
    cr_expect_eq(hive__etcd_url_parse(&u, url), HIVE_ERR_INVALID, "%s was taken", url);
    cr_expect_not_null(strstr(hive_last_error(), want), "%s: '%s' lacks '%s'", url, hive_last_error(), want);
    cr_expect_eq(u.nendpoints, (size_t)0x5a5a5a5a5a5a5a5a, "%s: the output was written on failure", url);
}

Test(etcdurl, one_host_with_the_defaults)
{
    hive__etcd_url u = parse_ok("etcd://127.0.0.1:2379/hive");

    cr_expect_not(u.tls);
    cr_expect_null(u.user);
    cr_assert_eq(u.nendpoints, 1);
    cr_expect_str_eq(u.endpoints[0], "127.0.0.1:2379");
    cr_expect_str_eq(u.prefix, "/hive");
    cr_expect_eq(u.lock_ttl, 60);
    cr_expect_eq(u.timeout_ms, 5000);
    cr_expect_not(u.plain_remote);
    cr_expect_null(u.ca_file);
    hive__etcd_url_free(&u);
}

Test(etcdurl, several_hosts_a_user_options_and_the_default_port)
{
    hive__etcd_url u = parse_ok("etcds://alice@a.example,b.example:2380,[::1]:2381,[fe80::1]/team/hive//"
                                "?lock_ttl=30&timeout=2.5&ca_file=/etc/ca.pem&cert_file=c.pem&key_file=k.pem");

    cr_expect(u.tls);
    cr_expect_str_eq(u.user, "alice");
    cr_assert_eq(u.nendpoints, 4);
    cr_expect_str_eq(u.endpoints[0], "a.example:2379");
    cr_expect_str_eq(u.endpoints[1], "b.example:2380");
    cr_expect_str_eq(u.endpoints[2], "[::1]:2381");
    cr_expect_str_eq(u.endpoints[3], "[fe80::1]:2379");
    cr_expect_str_eq(u.prefix, "/team/hive");
    cr_expect_eq(u.lock_ttl, 30);
    cr_expect_eq(u.timeout_ms, 2500);
    cr_expect_str_eq(u.ca_file, "/etc/ca.pem");
    cr_expect_str_eq(u.cert_file, "c.pem");
    cr_expect_str_eq(u.key_file, "k.pem");
    cr_expect_not(u.plain_remote, "etcds:// is never plain");
    hive__etcd_url_free(&u);
}

Test(etcdurl, plain_http_to_another_host_is_noted)
{
    hive__etcd_url u = parse_ok("etcd://localhost:2379,db.example:2379/hive?");

    cr_expect(u.plain_remote);
    hive__etcd_url_free(&u);
}

Test(etcdurl, numbers_are_plain_decimals)
{
    refused("etcd://h/p?timeout=5x", "timeout='5x' is not a number of seconds");
    refused("etcd://h/p?timeout=", "timeout='' is not a number of seconds");
    refused("etcd://h/p?timeout= 5", "is not a number of seconds");
    refused("etcd://h/p?timeout=+5", "is not a number of seconds");
    refused("etcd://h/p?timeout=-1", "is not a number of seconds");
    refused("etcd://h/p?timeout=1e3", "is not a number of seconds");
    refused("etcd://h/p?timeout=0x10", "is not a number of seconds");
    refused("etcd://h/p?timeout=inf", "is not a number of seconds");
    refused("etcd://h/p?timeout=nan", "is not a number of seconds");
    refused("etcd://h/p?timeout=1.", "is not a number of seconds");
    refused("etcd://h/p?timeout=.5", "is not a number of seconds");
    refused("etcd://h/p?timeout=1.2.3", "is not a number of seconds");
    refused("etcd://h/p?lock_ttl=60s", "lock_ttl='60s' is not a number of seconds");
    refused("etcd://h/p?lock_ttl=1234567890123456789012345678901234567890123", "is out of range");
    refused("etcd://h/p?lock_ttl=12345678901234567890123456789012345678901234x", "1234567890...' is not a number");
}

Test(etcdurl, numbers_in_range)
{
    hive__etcd_url u = parse_ok("etcd://h/p?timeout=0.1&lock_ttl=86400");

    cr_expect_eq(u.timeout_ms, 100);
    cr_expect_eq(u.lock_ttl, 86400);
    hive__etcd_url_free(&u);
    refused("etcd://h/p?timeout=0.05", "timeout=0.05 is out of range (0.1 to 86400 seconds)");
    refused("etcd://h/p?timeout=0", "out of range");
    refused("etcd://h/p?timeout=86401", "out of range");
    refused("etcd://h/p?lock_ttl=1", "lock_ttl=1 is out of range (2 to 86400 seconds)");
}

Test(etcdurl, options_once_each_and_known)
{
    refused("etcd://h/p?timeout=1&timeout=2", "timeout is given twice");
    refused("etcd://h/p?ca_file=a&ca_file=b", "ca_file is given twice");
    refused("etcd://h/p?ca_file=", "ca_file= is empty");
    refused("etcd://h/p?timeout", "timeout has no value");
    refused("etcd://h/p?colour=blue", "unknown etcd store option 'colour'");
    refused("etcd://h/p?timeout=1&&lock_ttl=5", "empty option");
    refused("etcd://h/p?timeout=1&", "empty option");
}

Test(etcdurl, hosts_and_ports)
{
    refused("etcd://h:0/p", "the port '0'");
    refused("etcd://h:65536/p", "the port '65536'");
    refused("etcd://h:80x/p", "the port '80x'");
    refused("etcd://h:/p", "the port ''");
    refused("etcd://h:-1/p", "the port '-1'");
    refused("etcd://a,,b/p", "an empty host");
    refused("etcd://a,/p", "an empty host");
    refused("etcd://:2379/p", "a port without a host");
    refused("etcd://[::1/p", "without its closing ']'");
    refused("etcd://[::1]x/p", "after an IPv6 address");
    refused("etcd://a b/p", "a character a host name cannot hold");
    refused("etcd://1,2,3,4,5,6,7,8,9/p", "more than 8 hosts");
}

Test(etcdurl, the_shape_of_the_url)
{
    refused("http://h/p", "not an etcd:// URL");
    refused("etcd:/h/p", "not an etcd:// URL");
    refused("etcd://h", "an etcd store is etcd://");
    refused("etcd:///p", "an etcd store is etcd://");
    refused("etcd://h?x=1/p", "an etcd store is etcd://");
    refused("etcd://h/", "PREFIX is missing");
    refused("etcd://h///?timeout=1", "PREFIX is missing");
    refused("etcd://@h/p", "an empty user name");
    refused("etcd://a@b@h/p", "more than one '@'");
}

Test(etcdurl, a_password_is_refused_and_never_repeated)
{
    refused("etcd://alice:hunter2@h/p", "holds a password");
    cr_expect_null(strstr(hive_last_error(), "hunter2"));
}
