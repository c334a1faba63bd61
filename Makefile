# Plaza: the two commands are `make run` and `make test`; both install what is missing first.
.PHONY: all build run test deps unit api browser fuzz bench clean format

JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:8080
DATA_DIR ?= ./var

all: build

deps:
	@scripts/deps.sh build

# Release build: build/plazad.
build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS) --target plazad

run: build
	build/plazad --listen $(LISTEN) --data-dir $(DATA_DIR) --web-dir web

# Every test, on the sanitizer build: unit (CTest), API (real plazad), browser (real Chromium), fuzz (bounded).
test:
	@scripts/deps.sh build test
	@scripts/test.sh

unit api browser fuzz:
	@scripts/deps.sh build test
	@scripts/test.sh $@

bench:
	@scripts/deps.sh build bench
	@$(MAKE) --no-print-directory build
	bench/http.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz
