# nexus — `make demo` shows it, `make test` proves it.
SHELL := /bin/bash
CARGO ?= cargo
TARGET_TRIPLE ?= x86_64-unknown-linux-gnu
PREFIX ?= /usr/local

.PHONY: build test lint fuzz demo bench bench-setup static musl aarch64 aarch64-musl install uninstall clean deps FORCE

# The quick optimized build of every day (profile `release`, no fat LTO).
build:
	$(CARGO) build --release

# Everything: unit tests, integration tests (real processes; SSH tests start their own sshd).
# As root or as a normal user: the tests that need root print `SKIP test: needs root (why)`.
# `deps` installs missing packages as root (or with passwordless sudo), else names them and fails.
test: deps
	$(CARGO) test --all-targets

# rustfmt, and clippy with warnings as errors; no function over 80 lines (clippy.toml).
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings -W clippy::too_many_lines

# Fuzz the parsers (nexus.toml, ssh_config, known_hosts, the journal) for FUZZ_SECONDS
# each (default 60): cargo-fuzz and the nightly toolchain, in fuzz/ (not part of the
# build: `test` and `lint` need neither). See scripts/fuzz.sh.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh

demo: build
	./scripts/demo.sh

# nexus against make and just on generated task graphs (BENCHMARKS.md). Tools that are
# missing (hyperfine, GNU time, just) are installed first by scripts/bench-setup.sh local:
# apt-get needs root or sudo, just is built with cargo into .bench-tools/.
bench: build
	./scripts/bench-local.sh

# Every benchmark tool, including the SSH peers (ansible-core, pyinfra, parallel-ssh in
# .bench-tools/venv) that scripts/bench-ssh.sh compares nexus with.
bench-setup:
	./scripts/bench-setup.sh all

# A statically linked binary for shipping (glibc, crt-static; the release-lto profile:
# fat LTO, one codegen unit, stripped): target/$(TARGET_TRIPLE)/release-lto/nexus
static:
	RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" $(CARGO) build --profile release-lto --target $(TARGET_TRIPLE)
	@file target/$(TARGET_TRIPLE)/release-lto/nexus
	@ls -l target/$(TARGET_TRIPLE)/release-lto/nexus

# Static builds for other targets, as scripts that a fresh Debian 12 machine can run as
# root (they install their cross compilers and libraries with apt-get): docs/install.md.
#   make musl          target/x86_64-unknown-linux-musl/release-lto/nexus
#   make aarch64       target/aarch64-unknown-linux-gnu/release-lto/nexus (glibc, static)
#   make aarch64-musl  target/aarch64-unknown-linux-musl/release-lto/nexus
musl:
	./scripts/build-musl.sh x86_64

aarch64:
	./scripts/build-aarch64.sh gnu

aarch64-musl:
	./scripts/build-musl.sh aarch64

# `make install PREFIX=/usr DESTDIR=/tmp/pkg`: the binary, the man page and the bash, zsh
# and fish completions, in the places docs/install.md lists. INSTALL_BIN is the binary
# installed (default: a release-lto build for this machine, built first); it is also run
# to write the man page and the completions (`nexus man`, `nexus completions SHELL`), so a
# binary for another architecture needs GEN_BIN=target/release/nexus (a native one).
INSTALL_BIN ?= target/release-lto/nexus
GEN_BIN ?= $(INSTALL_BIN)
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
INSTALLED := $(DESTDIR)$(BINDIR)/nexus $(DESTDIR)$(MANDIR)/man1/nexus.1 \
	$(DESTDIR)$(BASHCOMPDIR)/nexus $(DESTDIR)$(ZSHCOMPDIR)/_nexus \
	$(DESTDIR)$(FISHCOMPDIR)/nexus.fish

target/release-lto/nexus: FORCE
	$(CARGO) build --profile release-lto

install: $(INSTALL_BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) \
		$(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0755 $(INSTALL_BIN) $(DESTDIR)$(BINDIR)/nexus
	$(GEN_BIN) man > $(DESTDIR)$(MANDIR)/man1/nexus.1
	$(GEN_BIN) completions bash > $(DESTDIR)$(BASHCOMPDIR)/nexus
	$(GEN_BIN) completions zsh > $(DESTDIR)$(ZSHCOMPDIR)/_nexus
	$(GEN_BIN) completions fish > $(DESTDIR)$(FISHCOMPDIR)/nexus.fish
	chmod 0644 $(DESTDIR)$(MANDIR)/man1/nexus.1 $(DESTDIR)$(BASHCOMPDIR)/nexus \
		$(DESTDIR)$(ZSHCOMPDIR)/_nexus $(DESTDIR)$(FISHCOMPDIR)/nexus.fish

# Removes what `make install` installed (same PREFIX and DESTDIR), nothing else.
uninstall:
	rm -f $(INSTALLED)

FORCE:

# Tools the test suite needs on a fresh machine (Debian): sshd and dropbear for the SSH tests.
# Quiet when all are there, for any user.
deps:
	@./scripts/ensure-deps.sh

clean:
	$(CARGO) clean
