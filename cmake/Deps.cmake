# Every dependency comes from Debian 12 (scripts/setup.sh installs them).
find_package(PkgConfig REQUIRED)
find_package(OpenSSL 3.0 REQUIRED)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(TSS2 REQUIRED IMPORTED_TARGET tss2-esys tss2-tctildr tss2-mu tss2-rc)
# libtsi parses TPM structures (node attestation) without talking to a TPM.
pkg_check_modules(TSS2_MU REQUIRED IMPORTED_TARGET tss2-mu)
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
# libmicrohttpd's TLS library: tsi hands it the server certificate per
# handshake (lib/tls.c) so that SIGHUP can replace it.
pkg_check_modules(GNUTLS REQUIRED IMPORTED_TARGET gnutls)
pkg_check_modules(LMDB REQUIRED IMPORTED_TARGET lmdb)
pkg_check_modules(LIBCONFIG REQUIRED IMPORTED_TARGET libconfig)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
# The issuer front end's system call filter (issuer/sandbox.c); linked by
# tsi-issuer only.
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)
if(TSI_TESTS)
  pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
endif()
find_package(Threads REQUIRED)
