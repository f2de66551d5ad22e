# SafetensorsCheckpoint tests (src/model/safetensors.cpp, fp8.cpp). Include from tests/model/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/safetensors.cmake)
# The test runs ${INFERD_PYTHON} tools/make_safetensors_fixtures.py (needs torch + safetensors from the venv)
# once into ${CMAKE_BINARY_DIR}/test_tmp and reuses the result while the script is unchanged.
get_filename_component(_inferd_st_root "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
inferd_add_gtest(NAME safetensors_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/safetensors_test.cpp
  LIBS inferd_model
  LABELS model
  TIMEOUT 120
  ENVIRONMENT "INFERD_TEST_TMP=${CMAKE_BINARY_DIR}/test_tmp" "INFERD_SOURCE_DIR=${_inferd_st_root}"
              "INFERD_PYTHON=${INFERD_PYTHON}")
# The paths travel in the environment, not as compile definitions, so the object is the same in every clone.
target_include_directories(safetensors_test PRIVATE ${_inferd_st_root}/tests)
