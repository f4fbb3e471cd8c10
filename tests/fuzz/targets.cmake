# The fuzz targets (tests/fuzz/fuzz_<name>.c), in every build without
# libFuzzer: replay_<name> runs one over the files it is given, and the
# test fuzz_regress runs each over its committed corpus and its findings.
# With clang and -DHIVE_FUZZ=ON, tests/fuzz/CMakeLists.txt also builds them
# as libFuzzer programs (scripts/fuzz runs those).
set(HIVE_FUZZ_TARGETS fernet fernet_key json cred index template dotenv oauth2 datetime mask http1 etcdurl keycmd)
set(HIVE_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
# Sources from outside the library a target tests: hive-run --mask's matcher.
set(HIVE_FUZZ_SOURCES_mask ${PROJECT_SOURCE_DIR}/launcher/maskmatch.c)

set(hive_replays "")
foreach(name ${HIVE_FUZZ_TARGETS})
  add_executable(replay_${name} ${HIVE_FUZZ_DIR}/fuzz_${name}.c ${HIVE_FUZZ_DIR}/replay_main.c
                 ${HIVE_FUZZ_SOURCES_${name}})
  # oauth2, http1, etcdurl, fernet_key and keycmd reach library-internal functions (hive__ tier),
  # mask the matcher of launcher/.
  target_include_directories(replay_${name} PRIVATE ${PROJECT_SOURCE_DIR}/store/src ${PROJECT_SOURCE_DIR}/launcher)
  target_link_libraries(replay_${name} PRIVATE hive_static hive_build_flags)
  list(APPEND hive_replays $<TARGET_FILE:replay_${name}>)
endforeach()

add_test(NAME fuzz_regress COMMAND ${HIVE_FUZZ_DIR}/regress.sh ${HIVE_FUZZ_DIR} ${hive_replays})
set_tests_properties(fuzz_regress PROPERTIES LABELS fuzz)
