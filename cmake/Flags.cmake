# Warnings and hardening, as in STYLE.md.
set(TSI_WARN -Wall -Wextra -Wformat=2 -Wshadow -Wvla -Wstrict-prototypes
    -Wmissing-prototypes -Wpointer-arith -Wno-unused-parameter)
if(TSI_WERROR)
  list(APPEND TSI_WARN -Werror)
endif()
add_compile_options(${TSI_WARN} -fstack-protector-strong -fPIE)
if(NOT TSI_SANITIZE AND NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
  add_compile_definitions(_FORTIFY_SOURCE=3)
  add_compile_options(-U_FORTIFY_SOURCE)
endif()
add_link_options(-Wl,-z,relro -Wl,-z,now -pie)
if(TSI_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()
