/* Header-only target: the map layout lives in include/sockaff_abi.h. */
