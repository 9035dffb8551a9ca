/* The C API is implemented in Swift (Sources/SockaffCAPI); this target only carries sockaff.h. */
