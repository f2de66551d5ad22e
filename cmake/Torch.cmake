# libtorch from the project virtualenv's torch wheel (pinned in scripts/requirements.txt).
# Sets INFERD_HAVE_TORCH and INFERD_HAVE_CUDA. Only ops/, model/ and worker/ may link torch.
set(INFERD_HAVE_TORCH OFF)
set(INFERD_HAVE_CUDA OFF)

if(INFERD_WITH_TORCH)
  execute_process(
    COMMAND ${INFERD_PYTHON} -c "import torch.utils, os; print(torch.utils.cmake_prefix_path, end='')"
    OUTPUT_VARIABLE _torch_prefix RESULT_VARIABLE _torch_rc ERROR_QUIET)
  if(NOT _torch_rc EQUAL 0)
    message(FATAL_ERROR "INFERD_WITH_TORCH is ON but ${INFERD_PYTHON} cannot import torch; run scripts/setup.sh "
                        "or configure with -DINFERD_WITH_TORCH=OFF")
  endif()
  list(APPEND CMAKE_PREFIX_PATH ${_torch_prefix})
  get_filename_component(INFERD_TORCH_ROOT "${_torch_prefix}/../.." ABSOLUTE)  # .../site-packages/torch

  if(NOT INFERD_WITH_CUDA STREQUAL "OFF")
    find_program(INFERD_NVCC nvcc PATHS /usr/local/cuda/bin)
  endif()
  if(INFERD_NVCC AND NOT INFERD_WITH_CUDA STREQUAL "OFF")
    set(CMAKE_CUDA_COMPILER ${INFERD_NVCC})
    set(CMAKE_CUDA_ARCHITECTURES 80 90)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    enable_language(CUDA)
    set(INFERD_HAVE_CUDA ON)
  elseif(INFERD_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "INFERD_WITH_CUDA=ON but nvcc was not found")
  endif()
  # TorchConfig looks for the CUDA toolkit on its own; without one it must not insist.
  if(NOT INFERD_HAVE_CUDA)
    set(USE_CUDA OFF)
  endif()
  # No GPU on build machines: give TorchConfig the target archs so it does not try to detect a device.
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0")
  find_package(Torch REQUIRED)
  # The wheel's include/ bundles its own google/protobuf and fmt headers, which would shadow Debian's
  # Protobuf (used by our gRPC code) and fmt (used by spdlog). Point torch's targets at a view of include/
  # without them.
  set(_torch_inc ${INFERD_TORCH_ROOT}/include)
  set(_view ${CMAKE_BINARY_DIR}/torch-include)
  file(MAKE_DIRECTORY ${_view})
  file(GLOB _entries RELATIVE ${_torch_inc} ${_torch_inc}/*)
  foreach(e ${_entries})
    if(NOT e MATCHES "^(google|fmt|pybind11)$" AND NOT EXISTS ${_view}/${e})
      file(CREATE_LINK ${_torch_inc}/${e} ${_view}/${e} SYMBOLIC)
    endif()
  endforeach()
  foreach(t torch torch_cpu torch_cuda c10 c10_cuda torch_library)
    if(TARGET ${t})
      get_target_property(_inc ${t} INTERFACE_INCLUDE_DIRECTORIES)
      if(_inc)
        string(REPLACE "${_torch_inc}" "${_view}" _inc "${_inc}")
        set_target_properties(${t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_inc}")
      endif()
    endif()
  endforeach()
  # libtorch_cpu.so exports its own static copy of std::filesystem; an executable that finds those symbols
  # there before libstdc++'s crashes (remove_all jumps to null). Make libstdc++ the first DT_NEEDED entry so
  # the dynamic linker binds every std:: symbol to it.
  add_link_options("LINKER:--push-state,--no-as-needed" "-lstdc++" "LINKER:--pop-state")
  set(INFERD_HAVE_TORCH ON)
  message(STATUS "inferd: libtorch ${Torch_VERSION} from ${INFERD_TORCH_ROOT}; CUDA kernels: ${INFERD_HAVE_CUDA}")
endif()
