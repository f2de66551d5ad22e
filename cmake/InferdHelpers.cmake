# Project-wide helpers: warnings as errors on our own code, one way to declare a test.

function(inferd_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  if(INFERD_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror -Wno-unused-parameter>)
  else()
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
  endif()
endfunction()

# inferd_add_gtest(NAME n SOURCES a.cpp b.cpp LIBS lib1 lib2 [LABELS l1 l2] [TIMEOUT s] [ENVIRONMENT K=V...]
#                  [PROPERTIES p v...])
# Builds build/tests/<n> and registers each gtest case with ctest (the whole binary as one test in the
# sanitizer builds). ENVIRONMENT takes any number of K=V (generator expressions allowed); PROPERTIES values must
# be single items (gtest_discover_tests flattens lists), so a list-valued ENVIRONMENT cannot go there.
function(inferd_add_gtest)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;PROPERTIES;ENVIRONMENT" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  inferd_target_defaults(${T_NAME})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  # Sanitizer builds (docs/hardening.md) run each test binary as one ctest test, all its cases in one process:
  # one process per case pays the sanitizer runtime's start and the fixtures' set-up every time (loading the
  # 129k-token tokenizer takes about 25 s under TSan on 2 cores; server_tests took ~28 s a case that way, and
  # 49 s for all 66 cases in one process).
  if(INFERD_SANITIZE OR INFERD_TSAN)
    math(EXPR _timeout "${T_TIMEOUT} * 5")
    add_test(NAME ${T_NAME} COMMAND ${T_NAME} WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${_timeout} LABELS "${T_LABELS}" ${T_PROPERTIES})
    if(T_ENVIRONMENT)
      set_property(TEST ${T_NAME} PROPERTY ENVIRONMENT ${T_ENVIRONMENT})
    endif()
    return()
  endif()
  # gtest_discover_tests flattens list-valued properties, so several labels travel as one: "serving+model".
  # `ctest -L` takes a regex, so -L model still selects it.
  string(REPLACE ";" "+" _labels "${T_LABELS}")
  gtest_discover_tests(${T_NAME}
    WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
    DISCOVERY_TIMEOUT 120
    PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${_labels}" ${T_PROPERTIES})
  # ctest reads this after the discovered tests' file (TEST_INCLUDE_FILES in order), which lists them in
  # <n>_TESTS; the bracket argument keeps the list one value.
  if(T_ENVIRONMENT)
    set(_env_file ${CMAKE_CURRENT_BINARY_DIR}/${T_NAME}_environment.cmake)
    file(GENERATE OUTPUT ${_env_file} CONTENT
      "if(${T_NAME}_TESTS)\n  set_tests_properties(\${${T_NAME}_TESTS} PROPERTIES ENVIRONMENT [==[${T_ENVIRONMENT}]==])\nendif()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${_env_file})
  endif()
endfunction()
