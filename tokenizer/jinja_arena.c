/* Memory for the Jinja interpreter: a bump arena that a template or a rendering frees
 * all at once (values form cycles, e.g. a macro and the scope it was defined in, so
 * they are not freed one by one), and a growing byte buffer. */
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

#define BLOCK_SIZE (64u << 10)

struct jj_block {
    jj_block *next;
    size_t used, size;
    max_align_t data[];
};

void *jj_alloc(jj_arena *a, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (a->failed || (a->limit && a->allocated + size > a->limit)) {
        a->failed = 1;
        return NULL;
    }
    jj_block *b = a->blocks;
    if (!b || b->size - b->used < size) {
        /* a large request gets a block of its own, so the current block keeps its room */
        size_t room = size > BLOCK_SIZE / 4 ? size : BLOCK_SIZE;
        jj_block *fresh = malloc(sizeof *fresh + room);
        if (!fresh) {
            a->failed = 1;
            return NULL;
        }
        fresh->used = 0;
        fresh->size = room;
        if (b && size > BLOCK_SIZE / 4) { /* keep filling the current block */
            fresh->next = b->next;
            b->next = fresh;
        } else {
            fresh->next = b;
            a->blocks = fresh;
        }
        b = fresh;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    a->allocated += size;
    memset(p, 0, size);
    return p;
}

void jj_arena_free(jj_arena *a)
{
    jj_block *b = a->blocks;
    while (b) {
        jj_block *next = b->next;
        free(b);
        b = next;
    }
    a->blocks = NULL;
    a->allocated = 0;
}

void jj_buf_put(jj_buf *b, const char *s, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (n > JJ_MAX_OUTPUT - b->len) {
        b->failed = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void jj_buf_puts(jj_buf *b, const char *s)
{
    jj_buf_put(b, s, strlen(s));
}

void jj_buf_putc(jj_buf *b, char c)
{
    jj_buf_put(b, &c, 1);
}

void jj_buf_free(jj_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
