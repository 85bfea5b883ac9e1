#include "bit_plan.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"

/* The loss of one option: the tensor encoded (RTN grids: the relative losses of the
 * options are what matters), decoded, and compared. */
static int option_loss(const mp_encoding *e, const float *W, int64_t rows, int64_t cols, const float *importance,
                       double *loss, uint64_t *bytes, mp_error *err)
{
    mp_encoder x;
    int rc = mp_encoder_init(&x, e, rows, cols, NULL, err);
    uint8_t *raw = rc == MP_OK ? calloc(x.layout.total + 1, 1) : NULL;
    float *back = raw ? malloc((size_t)(rows * cols) * sizeof *back) : NULL;
    if (rc == MP_OK && !back)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory measuring a [%lld, %lld] tensor", (long long)rows, (long long)cols);
    if (rc == MP_OK) {
        mp_encoder_whole(&x, W, raw);
        mp_encoding_decode_rows(e, rows, cols, raw, 0, rows, back);
        double sum = 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                double d = (double)back[r * cols + c] - (double)W[r * cols + c];
                sum += (importance ? importance[c] : 1.0) * d * d;
            }
        *loss = sum;
        *bytes = x.layout.total;
    }
    free(raw);
    free(back);
    mp_encoder_free(&x);
    return rc;
}

int mp_bit_measure(mp_bit_item *it, const float *W, int64_t rows, int64_t cols, const float *importance,
                   double frequency, uint64_t align, mp_error *err)
{
    it->params += rows * cols;
    for (int k = 0; k < it->n_options; k++) {
        double loss;
        uint64_t bytes;
        int rc = option_loss(&it->options[k], W, rows, cols, importance, &loss, &bytes, err);
        if (rc != MP_OK)
            return rc;
        it->loss[k] += loss * frequency;
        it->bytes[k] += (bytes + align - 1) / align * align;
    }
    return MP_OK;
}

/* The option minimising loss + price * bytes (the fewer bytes on ties). */
static int best_at(const mp_bit_item *it, double price)
{
    int best = 0;
    for (int k = 1; k < it->n_options; k++) {
        double a = it->loss[k] + price * (double)it->bytes[k], b = it->loss[best] + price * (double)it->bytes[best];
        if (a < b || (a == b && it->bytes[k] < it->bytes[best]))
            best = k;
    }
    return best;
}

static uint64_t choose_all(mp_bit_item *items, int n, double price)
{
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        items[i].choice = best_at(&items[i], price);
        total += items[i].bytes[items[i].choice];
    }
    return total;
}

static int smallest(const mp_bit_item *it)
{
    int s = 0;
    for (int k = 1; k < it->n_options; k++)
        if (it->bytes[k] < it->bytes[s])
            s = k;
    return s;
}

/* Spends what the price left over: repeatedly the single upgrade saving the most
 * loss per extra byte that still fits. */
static uint64_t spend_rest(mp_bit_item *items, int n, uint64_t budget, uint64_t used)
{
    for (;;) {
        int bi = -1, bk = -1;
        double best_gain = 0;
        for (int i = 0; i < n; i++) {
            const mp_bit_item *it = &items[i];
            for (int k = 0; k < it->n_options; k++) {
                uint64_t now = it->bytes[it->choice];
                if (it->bytes[k] <= now || used - now + it->bytes[k] > budget || it->loss[k] >= it->loss[it->choice])
                    continue;
                double gain = (it->loss[it->choice] - it->loss[k]) / (double)(it->bytes[k] - now);
                if (gain > best_gain) {
                    best_gain = gain;
                    bi = i;
                    bk = k;
                }
            }
        }
        if (bi < 0)
            return used;
        used = used - items[bi].bytes[items[bi].choice] + items[bi].bytes[bk];
        items[bi].choice = bk;
    }
}

/* One downgrade paired with one upgrade that lowers the loss and still fits: the
 * relaxation's integrality gap closes this way on small plans. Quadratic in the
 * number of tensors, so only plans of up to EXCHANGE_MAX tensors get it. */
enum { EXCHANGE_MAX = 2048 };

static bool best_exchange(mp_bit_item *items, int n, uint64_t budget, uint64_t *used)
{
    double best_gain = 0;
    int bi = -1, ba = -1, bj = -1, bb = -1;
    for (int i = 0; i < n; i++)
        for (int a = 0; a < items[i].n_options; a++) {
            const mp_bit_item *x = &items[i];
            if (x->bytes[a] >= x->bytes[x->choice])
                continue;
            uint64_t freed = *used - x->bytes[x->choice] + x->bytes[a];
            double cost = x->loss[a] - x->loss[x->choice];
            for (int j = 0; j < n; j++) {
                const mp_bit_item *y = &items[j];
                for (int b = 0; j != i && b < y->n_options; b++) {
                    if (freed - y->bytes[y->choice] + y->bytes[b] > budget)
                        continue;
                    double gain = y->loss[y->choice] - y->loss[b] - cost;
                    if (gain > best_gain * (1 + 1e-12) + 1e-300) {
                        best_gain = gain;
                        bi = i, ba = a, bj = j, bb = b;
                    }
                }
            }
        }
    if (bi < 0)
        return false;
    *used = *used - items[bi].bytes[items[bi].choice] + items[bi].bytes[ba] - items[bj].bytes[items[bj].choice] +
            items[bj].bytes[bb];
    items[bi].choice = ba;
    items[bj].choice = bb;
    return true;
}

int mp_bit_allocate(mp_bit_item *items, int n, uint64_t budget, mp_error *err)
{
    uint64_t least = 0;
    int64_t params = 0;
    for (int i = 0; i < n; i++) {
        least += items[i].bytes[smallest(&items[i])];
        params += items[i].params;
    }
    if (least > budget)
        return mp_fail(err, MP_EXIT_INPUT, "--bits: the smallest encodings take %.3f bits per weight, above the budget",
                       params ? 8.0 * (double)least / (double)params : 0.0);
    if (choose_all(items, n, 0.0) <= budget)
        return MP_OK; /* everything at its best fits */
    double lo = 0, hi = 1;
    while (choose_all(items, n, hi) > budget)
        hi *= 2;
    for (int it = 0; it < 100; it++) {
        double mid = 0.5 * (lo + hi);
        if (choose_all(items, n, mid) > budget)
            lo = mid;
        else
            hi = mid;
    }
    uint64_t used = spend_rest(items, n, budget, choose_all(items, n, hi));
    for (int round = 0; n <= EXCHANGE_MAX && round < 4 * n && best_exchange(items, n, budget, &used); round++)
        used = spend_rest(items, n, budget, used);
    return MP_OK;
}
