# Fuzz targets for parsers that live inside a component: they link that
# component's core library (everything but its main.c).
if(TARGET tsi-sidecar-core)
  target_link_libraries(fuzz_sidecar_spec PRIVATE tsi-sidecar-core)
endif()
if(TARGET tsi_injector_core)
  target_link_libraries(fuzz_admission PRIVATE tsi_injector_core)
endif()
if(TARGET tsi-vault-core)
  foreach(t fuzz_vault_login fuzz_vault_kv_write fuzz_vault_path)
    target_link_libraries(${t} PRIVATE tsi-vault-core)
  endforeach()
endif()
