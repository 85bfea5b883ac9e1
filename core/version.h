/* The version moepack reports and writes into the provenance of what it makes. */
#ifndef MP_VERSION_H
#define MP_VERSION_H

#define MP_VERSION "0.1.0"

#endif
