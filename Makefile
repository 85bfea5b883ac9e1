# moepack build. `make` builds ./moepack; `make test` runs every test; see README.md.
#   PORTABLE=1  generic x86-64-v2 build instead of -march=native
#   SAN=1       AddressSanitizer + UndefinedBehaviorSanitizer (separate build dir)
#   ARM64=1     cross build for arm64 into build-arm64/ (`make test-arm64` runs it under qemu)

CC      ?= cc
PKGS    := libzstd libxxhash jansson openblas oniguruma libutf8proc
DEPS    := libzstd-dev libxxhash-dev libjansson-dev libcmocka-dev libopenblas-dev libonig-dev libutf8proc-dev pkg-config \
           python3-numpy python3-zstandard python3-xxhash chromium zstd

# arm64: Debian's cross gcc and the arm64 (multiarch) builds of the libraries. The
# baseline is the Cortex-A76 of the Raspberry Pi 5 and Neoverse N1 (Graviton2):
# armv8.2-a with the dot product, which Apple M1 (armv8.5-a) also has; a Pi 4 (A72,
# armv8-a, no dotprod) needs ARM64_MARCH=armv8-a ARM64_CPU=cortex-a72, and code using
# vdotq_s32 keeps a plain NEON path under #ifdef __ARM_FEATURE_DOTPROD for it. qemu
# emulates that CPU, so an instruction beyond the baseline fails the tests.
ARM64_MARCH := armv8.2-a+dotprod
ARM64_CPU   := cortex-a76
# libonig-dev is not Multi-Arch: same in bookworm, so its arm64 build would replace
# the native one: the arm64 build takes the (arch-independent) header of the native
# package and links the arm64 runtime library libonig5 by its file name. The programs
# run under qemu with the loader, libc and libgomp of Debian's arm64 packages: the
# cross toolchain's own copies (qemu -L /usr/aarch64-linux-gnu) are an older libc than
# the one the arm64 libraries pull in, and that mix hangs at the first pthread_create.
ARM64_DEPS  := gcc-aarch64-linux-gnu qemu-user libonig-dev \
               $(addsuffix :arm64,libzstd-dev libxxhash-dev libjansson-dev libcmocka-dev libopenblas-dev libutf8proc-dev libonig5 libgomp1)
PKG_CONFIG  := pkg-config

ifeq ($(ARM64),1)
  CC    := aarch64-linux-gnu-gcc
  ARCH  := -march=$(ARM64_MARCH)
  PKG_CONFIG := PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig pkg-config
  PKGS  := $(filter-out oniguruma,$(PKGS))
  LIBONIG := -l:libonig.so.5
else ifeq ($(PORTABLE),1)
  ARCH  := -march=x86-64-v2
else
  ARCH  := -march=native
endif

SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
CFLAGS  := -std=c11 -D_GNU_SOURCE -O2 $(ARCH) -fopenmp -Wall -Wextra -Werror -g
BUILD   := build
ifeq ($(SAN),1)
  CFLAGS += -O1 $(SANFLAGS)
  BUILD  := build-san
endif
ifeq ($(ARM64),1)
  # another baseline (ARM64_MARCH=armv8-a) builds beside the default one, not over it
  BUILD  := build-arm64$(if $(filter-out armv8.2-a+dotprod,$(ARM64_MARCH)),-$(ARM64_MARCH))$(if $(filter 1,$(SAN)),-san)
endif
CFLAGS  += $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) $(LIBONIG) -lm
LDFLAGS := -fopenmp -pthread $(if $(filter 1,$(SAN)),$(SANFLAGS))

LIB_SRC   := $(wildcard core/*.c formats/*.c report/*.c model/*.c tokenizer/*.c engine/*.c quant/*.c convert/*.c prune/*.c verify/*.c run/*.c export/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC  := $(wildcard tests/unit/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC  := $(filter-out tests/tools/fault_shim.c,$(wildcard tests/tools/*.c))
TOOL_BIN  := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/%)
SYNTH_SRC := $(wildcard tests/synth/*.c)
SYNTH_OBJ := $(SYNTH_SRC:%.c=$(BUILD)/%.o)

ifneq ($(filter 1,$(SAN) $(ARM64)),)
  MOEPACK := $(BUILD)/moepack
else
  MOEPACK := moepack
endif

.PHONY: all deps test run-tests demo bench clean deps-arm64 test-arm64 run-tests-arm64 fuzz run-fuzz
all: $(MOEPACK) $(BUILD)/synth

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libmoepack.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(MOEPACK): $(BUILD)/main.o $(BUILD)/libmoepack.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/synth: $(SYNTH_OBJ) $(BUILD)/libmoepack.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/%: tests/tools/%.c $(wildcard tests/tools/*.h) $(BUILD)/libmoepack.a
	$(CC) $(CFLAGS) $< $(BUILD)/libmoepack.a $(LDFLAGS) $(LDLIBS) -o $@

# The fault tests' LD_PRELOAD shim: a shared object, never sanitized (it is preloaded
# behind the ASan runtime in the SAN build).
$(BUILD)/fault_shim.so: tests/tools/fault_shim.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -fPIC -shared $< -o $@ -ldl

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/libmoepack.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libmoepack.a $(LDFLAGS) $(LDLIBS) -lcmocka -o $@

deps:
	@missing=""; for p in $(DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo=sudo; fi; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "all dependencies present"; fi

# test and demo install what is missing first, then build in a second make: the
# pkg-config flags above are read when make starts, so a first make could not see
# libraries that deps has just installed.
test: deps
	@$(MAKE) --no-print-directory run-tests

run-tests: $(MOEPACK) $(BUILD)/synth $(TOOL_BIN) $(BUILD)/fault_shim.so $(TEST_BIN)
	@MOEPACK=$(abspath $(MOEPACK)) SYNTH=$(abspath $(BUILD)/synth) BUILD=$(abspath $(BUILD)) NPM_ORACLES=$(abspath build/npm) \
	  sh tests/run.sh $(TEST_BIN) tests/cli/test_*.sh

# The arm64 build: its libraries come from Debian's arm64 architecture, which dpkg
# must know before apt can see them. The unit tests run under qemu-aarch64, then
# tests/arm64/smoke.sh runs the CLI there and compares with the native build.
deps-arm64:
	@dpkg --print-foreign-architectures | grep -qx arm64 || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo=sudo; fi; \
	  echo "dpkg --add-architecture arm64"; $$sudo dpkg --add-architecture arm64; }
	@$(MAKE) --no-print-directory deps DEPS="$(ARM64_DEPS)"

test-arm64: deps-arm64
	@$(MAKE) --no-print-directory moepack build/synth
	@$(MAKE) --no-print-directory ARM64=1 run-tests-arm64

run-tests-arm64: $(MOEPACK) $(BUILD)/synth $(TEST_BIN)
	@QEMU="qemu-aarch64 -cpu $(ARM64_CPU)" BUILD=$(abspath $(BUILD)) \
	  NATIVE_MOEPACK=$(abspath moepack) NATIVE_SYNTH=$(abspath build/synth) \
	  sh tests/arm64/run.sh $(TEST_BIN)

demo: deps
	@$(MAKE) --no-print-directory $(MOEPACK)
	./$(MOEPACK) inspect tests/data/tiny-qwen3moe
	@rm -rf build/demo.mpk
	./$(MOEPACK) convert tests/data/tiny-qwen3moe -o build/demo.mpk --scheme w4a16
	./$(MOEPACK) check build/demo.mpk
	./$(MOEPACK) run build/demo.mpk --prompt "Call me Ishmael. Some years ago" --seed 1 --max-tokens 64 --stats

bench: $(MOEPACK) $(BUILD)/synth $(BUILD)/engine_limits $(BUILD)/tok_encode $(BUILD)/pack_dump $(BUILD)/kern_bench
	@MOEPACK=$(abspath $(MOEPACK)) SYNTH=$(abspath $(BUILD)/synth) ENGINE_LIMITS=$(abspath $(BUILD)/engine_limits) TOK_ENCODE=$(abspath $(BUILD)/tok_encode) \
	  PACK_DUMP=$(abspath $(BUILD)/pack_dump) KERN_BENCH=$(abspath $(BUILD)/kern_bench) \
	  NPM_ORACLES=$(abspath build/npm) \
	  sh bench/run.sh

# Fuzzing (tests/fuzz/README.md): libFuzzer targets built by clang with ASan+UBSan
# into build-fuzz/. `make fuzz FUZZ_SECONDS=N` replays tests/fuzz/regress, then runs
# each target N seconds on a copy of its seed corpus. libomp-dev: clang's -fopenmp
# links LLVM's OpenMP runtime and needs its omp.h.
FUZZ_DEPS     := clang libclang-rt-dev libomp-dev
FUZZ_CC       := clang
FUZZ_BUILD    := build-fuzz
FUZZ_SECONDS  ?= 60
FUZZ_SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS   := -std=c11 -D_GNU_SOURCE -O1 -g $(ARCH) -fopenmp -Wall -Wextra -Werror $(FUZZ_SANFLAGS) \
                 $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
# The AVX2/AVX-512 kernels use GCC's target pragma, which clang does not know; no
# parser reaches them.
FUZZ_LIB_SRC  := $(filter-out engine/kern_avx2.c engine/kern_avx512.c,$(LIB_SRC))
FUZZ_LIB_OBJ  := $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_SRC      := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN      := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(filter-out tests/fuzz/fuzz_util.c,$(FUZZ_SRC)))

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libmoepack.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/tests/fuzz/fuzz_util.o $(FUZZ_BUILD)/libmoepack.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_BUILD)/tests/fuzz/fuzz_util.o $(FUZZ_BUILD)/libmoepack.a \
	  -fopenmp -pthread $(LDLIBS) -o $@

fuzz:
	@$(MAKE) --no-print-directory deps DEPS="$(DEPS) $(FUZZ_DEPS)"
	@$(MAKE) --no-print-directory run-fuzz

run-fuzz: $(FUZZ_BIN)
	@FUZZ_BUILD=$(abspath $(FUZZ_BUILD)) FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh $(notdir $(FUZZ_BIN))

clean:
	rm -rf build build-san build-arm64* build-fuzz moepack

-include $(LIB_OBJ:.o=.d) $(BUILD)/main.d $(SYNTH_OBJ:.o=.d) $(FUZZ_LIB_OBJ:.o=.d)
