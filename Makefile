# moepack build. `make` builds ./moepack; `make test` runs every test; see README.md.
#   PORTABLE=1  generic x86-64-v2 build instead of -march=native
#   SAN=1       AddressSanitizer + UndefinedBehaviorSanitizer (separate build dir)

CC      ?= cc
PKGS    := libzstd libxxhash jansson openblas oniguruma libutf8proc
DEPS    := libzstd-dev libxxhash-dev libjansson-dev libcmocka-dev libopenblas-dev libonig-dev libutf8proc-dev pkg-config \
           python3-numpy python3-zstandard python3-xxhash chromium zstd

ifeq ($(PORTABLE),1)
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
CFLAGS  += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
LDFLAGS := -fopenmp -pthread $(if $(filter 1,$(SAN)),$(SANFLAGS))

LIB_SRC   := $(wildcard core/*.c formats/*.c report/*.c model/*.c tokenizer/*.c engine/*.c quant/*.c convert/*.c prune/*.c verify/*.c run/*.c export/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC  := $(wildcard tests/unit/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC  := $(wildcard tests/tools/*.c)
TOOL_BIN  := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/%)
SYNTH_SRC := $(wildcard tests/synth/*.c)
SYNTH_OBJ := $(SYNTH_SRC:%.c=$(BUILD)/%.o)

ifeq ($(SAN),1)
  MOEPACK := $(BUILD)/moepack
else
  MOEPACK := moepack
endif

.PHONY: all deps test run-tests demo bench clean
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

$(BUILD)/%: tests/tools/%.c $(BUILD)/libmoepack.a
	$(CC) $(CFLAGS) $< $(BUILD)/libmoepack.a $(LDFLAGS) $(LDLIBS) -o $@

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

run-tests: $(MOEPACK) $(BUILD)/synth $(TOOL_BIN) $(TEST_BIN)
	@MOEPACK=$(abspath $(MOEPACK)) SYNTH=$(abspath $(BUILD)/synth) BUILD=$(abspath $(BUILD)) NPM_ORACLES=$(abspath build/npm) \
	  sh tests/run.sh $(TEST_BIN) tests/cli/test_*.sh

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

clean:
	rm -rf build build-san moepack

-include $(LIB_OBJ:.o=.d) $(BUILD)/main.d $(SYNTH_OBJ:.o=.d)
