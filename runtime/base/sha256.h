// SHA-256 (FIPS 180-4) of a file's bytes: the identity of models and datasets across stores.
#ifndef PL_SHA256_H
#define PL_SHA256_H

// Hex SHA-256 of a file's bytes into hex[65]. Returns -1 naming the file if it cannot be read.
int pl_sha256_file(char hex[65], const char *path);

#endif
