/* Removal of an output still being written when the user interrupts (SIGINT,
 * SIGTERM, SIGHUP): the one piece of process-wide state, owned by the CLI layer.
 * A SIGKILL cannot be caught: the temporary name then stays, never the final one. */
#ifndef MP_CLEANUP_H
#define MP_CLEANUP_H

/* dir is a temporary output directory whose files are all named in files[]
 * (NULL-terminated); pass dir = NULL to disarm. */
void mp_cleanup_arm(const char *dir, const char *const *files);

/* The same for a flat temporary directory whose files are not known in advance (an
 * exported checkpoint's shards): on a signal every entry of dir is unlinked, then dir.
 * Disarm with mp_cleanup_arm(NULL, NULL). */
void mp_cleanup_arm_dir(const char *dir);

/* A flat scratch directory (a pack written only to be read again) removed on a
 * signal besides the armed output, independently of it. Up to 4 are held, as a
 * stack: NULL forgets the one registered last. */
void mp_cleanup_scratch(const char *dir);

/* A single temporary output file (a reference, a statistics file, a report) removed
 * on a signal, independently of the armed directory and the scratch ones; NULL
 * forgets it. */
void mp_cleanup_file(const char *path);

#endif
