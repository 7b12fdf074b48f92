# Warnings and hardening, as in STYLE.md.
include(CheckCCompilerFlag)
set(TSI_WARN -Wall -Wextra -Wformat=2 -Wshadow -Wvla -Wstrict-prototypes
    -Wmissing-prototypes -Wpointer-arith -Wno-unused-parameter)
if(TSI_WERROR)
  list(APPEND TSI_WARN -Werror)
endif()
add_compile_options(${TSI_WARN} -fstack-protector-strong -fPIE)
# Stack clash (a large alloca or frame jumping over the guard page) and
# control-flow protection (CET: endbr64, shadow stack), where the compiler
# and target have them (-fcf-protection is x86 only).
foreach(flag -fstack-clash-protection -fcf-protection)
  string(MAKE_C_IDENTIFIER "TSI_HAS${flag}" var)
  check_c_compiler_flag(${flag} ${var})
  if(${var})
    add_compile_options(${flag})
  endif()
endforeach()
# _FORTIFY_SOURCE needs optimisation (the default build type is
# RelWithDebInfo, -O2; without -O glibc warns, an error under -Werror), so
# it is on for the optimised build types only, and never under the
# sanitizers. -U first, then
# -D, both as options so that their order on the command line is this one:
# a -U after the -D (add_compile_definitions always comes first) silently
# switched it off. The -U drops a toolchain's own default level, so there
# is no redefinition warning. tests/security/build checks that release
# binaries do import fortified (__*_chk) functions.
set(TSI_FORTIFY OFF)
if(NOT TSI_SANITIZE AND NOT TSI_FUZZ AND
   CMAKE_BUILD_TYPE MATCHES "^(Release|RelWithDebInfo|MinSizeRel)$")
  set(TSI_FORTIFY ON)
  add_compile_options(-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3)
endif()
add_link_options(-Wl,-z,relro -Wl,-z,now -pie)
if(TSI_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()
if(TSI_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "TSI_FUZZ needs clang (CC=clang)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
                      -fno-sanitize-recover=all -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=address,undefined)
endif()
