# subproxy — transparent SMTP submission proxy.  See README.md.
#   make          build proxy/subproxy
#   make check    build and run every test (unit + integration); ends with "N passed, N failed"
#   make deps     install the Debian packages needed to build, test and demo
#   make certs    self-signed test CA and certificates under certs/
#   make demo     local Postfix MSA + subproxy in front + one message through it
#   make bench    subproxy and nginx's mail proxy side by side under the same load (test/bench/)
#   make install  PREFIX=/usr/local DESTDIR= [sysconfdir=...] [INSTALL_PROGRAM=install] (unstripped)

CXX      ?= g++
# hiredis (libhiredis-dev 0.14, its libevent adapter included): the shared state in Redis (issue 11).
PKGS     := libevent libevent_openssl libevent_pthreads openssl libsasl2 libconfig++ pwquality hiredis
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++17 -Wall -Wextra -Werror -pthread -MMD -MP -Iproxy -Isasl
CXXFLAGS += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread

PREFIX   ?= /usr/local
DESTDIR  ?=
# Installation directories, as autotools names them.  sysconfdir receives only the *.example
# files; the daemon's default -c stays /etc/subproxy/subproxy.conf (the installed unit passes
# -c $(sysconfdir)/subproxy/subproxy.conf).  A /usr install keeps its configuration in /etc.
sbindir    ?= $(PREFIX)/sbin
sysconfdir ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
mandir     ?= $(PREFIX)/share/man
docdir     ?= $(PREFIX)/share/doc/subproxy
unitdir    ?= $(PREFIX)/lib/systemd/system
INSTALL         ?= install
INSTALL_PROGRAM ?= $(INSTALL) -s
INSTALL_DATA    ?= $(INSTALL) -m 644
VERSION  := 0.1.0
CXXFLAGS += -DSUBPROXY_VERSION='"$(VERSION)"'

# proxy/ is split by role; the folder says whether a file is pure or I/O glue.
#   wire/     parsers and formatters of what crosses the wire (SMTP, SASL, HTTP, TLS hello, CIDR)
#   engine/   sans-I/O session engines: the customer's SMTP dialogue and the MSA's
#   defence/  abuse-defence decisions (trap, DNSBL filter, access list, ban list)
#   ops/      configuration, metrics, the migration report
#   io/       libevent/OpenSSL/Cyrus glue: listeners, sessions, upstream, TLS, auth workers
#   os/       the process and the file system: daemon, privileges, pid file, log, atomic files
# Pure code (the first four, and sasl/cyrus_file.cpp) never includes an I/O header (`make purity`)
# and is what the unit tests and the fuzz targets link.
PURE_DIRS := wire engine defence ops
IO_DIRS   := io os
PURE_SRCS := $(foreach d,$(PURE_DIRS),$(wildcard proxy/$(d)/*.cpp)) sasl/cyrus_file.cpp
IO_SRCS   := $(foreach d,$(IO_DIRS),$(wildcard proxy/$(d)/*.cpp)) sasl/sasl_server.cpp
MAIN_SRC  := proxy/main.cpp
UNIT_SRCS := $(wildcard test/unit/*.cpp)

PURE_OBJS := $(PURE_SRCS:.cpp=.o)
IO_OBJS   := $(IO_SRCS:.cpp=.o)
UNIT_OBJS := $(UNIT_SRCS:.cpp=.o)

all: proxy/subproxy

proxy/subproxy: $(PURE_OBJS) $(IO_OBJS) proxy/main.o
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDLIBS)

test/unit/unit_tests: $(UNIT_OBJS) $(PURE_OBJS)
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDLIBS) -lboost_unit_test_framework

test/unit/%.o: CXXFLAGS += -DBOOST_TEST_DYN_LINK

check: purity proxy/subproxy test/unit/unit_tests certs/.stamp
	@test/run-all.sh

unit: test/unit/unit_tests
	test/unit/unit_tests

certs: certs/.stamp
certs/.stamp: certs/make-certs.sh
	certs/make-certs.sh certs
	@touch $@

deps:
	test/deps.sh

# Thousands of messages through the proxy to a real Postfix restarted under load (test/soak/).
soak: proxy/subproxy certs/.stamp
	test/soak/soak.py

# The benchmark (test/bench/bench.py, README.md "Benchmark"): not a test, not part of all/check.
# Its load generator and upstream sink are one C++ program on libevent and OpenSSL.
BENCH_SRCS := $(wildcard test/bench/*.cpp)
BENCH_OBJS := $(BENCH_SRCS:.cpp=.o)

test/bench/loadgen: $(BENCH_OBJS)
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDLIBS)

bench: proxy/subproxy test/bench/loadgen certs/.stamp
	test/bench/bench.py

demo:
	$(MAKE) deps
	$(MAKE) all certs
	test/demo.sh

# The man pages name the example files relative to the source tree (".ds ex examples"); the
# installed pages name the installed copies instead.
install: proxy/subproxy
	$(INSTALL) -d $(DESTDIR)$(sbindir) $(DESTDIR)$(mandir)/man8 $(DESTDIR)$(mandir)/man5 \
	    $(DESTDIR)$(sysconfdir)/subproxy $(DESTDIR)$(unitdir) $(DESTDIR)$(docdir)/examples $(DESTDIR)$(docdir)/sasl
	$(INSTALL_PROGRAM) -m 755 proxy/subproxy $(DESTDIR)$(sbindir)/subproxy
	for page in man8/subproxy.8 man5/subproxy.conf.5; do \
	    sed -e 's#^\.ds ex examples$$#.ds ex $(docdir)/examples#' -e 's#^\.ds sa sasl$$#.ds sa $(docdir)/sasl#' \
	        man/$${page#*/} > $(DESTDIR)$(mandir)/$$page && chmod 644 $(DESTDIR)$(mandir)/$$page || exit 1; \
	done
	$(INSTALL_DATA) examples/subproxy.conf $(DESTDIR)$(sysconfdir)/subproxy/subproxy.conf.example
	$(INSTALL_DATA) sasl/subproxy.conf $(DESTDIR)$(sysconfdir)/subproxy/sasl-subproxy.conf.example
	sed -e 's#/usr/local/sbin/subproxy#$(sbindir)/subproxy#g' -e 's#/etc/subproxy/#$(sysconfdir)/subproxy/#g' \
	    examples/systemd/subproxy.service > $(DESTDIR)$(unitdir)/subproxy.service
	chmod 644 $(DESTDIR)$(unitdir)/subproxy.service
	cp -R examples/. $(DESTDIR)$(docdir)/examples/
	$(INSTALL_DATA) sasl/subproxy.conf $(DESTDIR)$(docdir)/sasl/subproxy.conf

# The layering rule, checked: no pure file includes libevent, OpenSSL, Cyrus SASL, sockets or threads.
IO_HEADERS := event2/|openssl/|sasl/sasl|sys/socket\.h|sys/un\.h|netinet/|<thread>|<mutex>|pthread\.h
purity:
	@bad=$$(grep -nE '^\s*#\s*include\s*[<"]($(IO_HEADERS))' $(PURE_SRCS) $(foreach d,$(PURE_DIRS),$(wildcard proxy/$(d)/*.h))); \
	if [ -n "$$bad" ]; then echo "pure code includes an I/O header:"; echo "$$bad"; exit 1; fi

# -t: subproxy.conf.5 has a table (tbl), as its first line tells man(1).
manlint:
	groff -t -man -ww -z man/subproxy.8 man/subproxy.conf.5

clean:
	rm -f proxy/*.o proxy/*/*.o proxy/*/*.d sasl/*.o sasl/*.d test/unit/*.o test/unit/*.d \
	      proxy/subproxy test/unit/unit_tests test/bench/*.o test/bench/*.d test/bench/loadgen

.PHONY: all check unit certs deps demo soak bench install manlint purity clean
-include $(wildcard proxy/*.d proxy/*/*.d sasl/*.d test/unit/*.d test/bench/*.d)

# ---------------------------------------------------------------------------------------------
# libFuzzer targets (test/fuzz/README.md).  Built with clang into test/fuzz/build/, from their
# own clang-compiled copies of the pure sources (the g++ objects in proxy/ are not touched).
#   make fuzz                        build every test/fuzz/fuzz_*.cpp
#   make fuzz-run FUZZ_SECONDS=60    run each for that long (make -j2 fuzz-run: two at a time)
#   make fuzz-run-fuzz_base64        run one
# One name per `command -v` (dash's takes only one); clang 14 (Debian's plain clang++) is too old.
FUZZ_CXX      ?= $(firstword $(foreach c,clang++-19 clang++-18 clang++-17 clang++-16,$(shell command -v $(c) 2>/dev/null)))
FUZZ_DIR      := test/fuzz
FUZZ_BUILD    := $(FUZZ_DIR)/build
FUZZ_SECONDS  ?= 60
FUZZ_FLAGS    ?=
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CXXFLAGS := -std=c++17 -O1 -g -fno-omit-frame-pointer -pthread -Iproxy -I$(FUZZ_DIR) \
                 -DSUBPROXY_VERSION='"$(VERSION)"' $(shell pkg-config --cflags libconfig++ 2>/dev/null)
FUZZ_SRCS     := $(wildcard $(FUZZ_DIR)/fuzz_*.cpp)
FUZZ_NAMES    := $(patsubst $(FUZZ_DIR)/%.cpp,%,$(FUZZ_SRCS))
FUZZ_TARGETS  := $(addprefix $(FUZZ_BUILD)/,$(FUZZ_NAMES))
FUZZ_OBJS     := $(patsubst proxy/%.cpp,$(FUZZ_BUILD)/obj/%.o,$(filter proxy/%.cpp,$(PURE_SRCS)))
FUZZ_LIB      := $(FUZZ_BUILD)/libsubproxy_fuzz.a

fuzz: $(FUZZ_TARGETS)

# Prints the clang used for the fuzz targets, nothing when there is none (test/run-all.sh).
fuzz-compiler:
	@echo $(FUZZ_CXX)

$(FUZZ_BUILD)/obj/%.o: proxy/%.cpp
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_OBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_TARGETS): $(FUZZ_BUILD)/%: $(FUZZ_DIR)/%.cpp $(FUZZ_DIR)/fuzz_util.h $(FUZZ_LIB)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) \
	    $(shell pkg-config --libs libconfig++ 2>/dev/null)

# New inputs go to build/corpus/<name> (ignored); the seeds in corpus/<name> are read only.
fuzz-run: $(addprefix fuzz-run-,$(FUZZ_NAMES))

fuzz-run-%: $(FUZZ_BUILD)/%
	@mkdir -p $(FUZZ_BUILD)/corpus/$* $(FUZZ_BUILD)/artifacts $(FUZZ_DIR)/corpus/$*
	@echo "fuzzing $* for $(FUZZ_SECONDS)s (log: $(FUZZ_BUILD)/$*.log)"
	@st=0; $(FUZZ_BUILD)/$* $(FUZZ_BUILD)/corpus/$* $(FUZZ_DIR)/corpus/$* -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/$*- -print_final_stats=1 \
	    $(if $(wildcard $(FUZZ_DIR)/dict/$*.dict),-dict=$(FUZZ_DIR)/dict/$*.dict) $(FUZZ_FLAGS) \
	    > $(FUZZ_BUILD)/$*.log 2>&1 || st=$$?; \
	grep -E '^#[0-9]+[[:space:]]+DONE|INVARIANT|ERROR:|SUMMARY:|stat::number_of_executed_units|Test unit written' \
	    $(FUZZ_BUILD)/$*.log | sed 's/^/$*: /'; exit $$st

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

.PHONY: fuzz fuzz-compiler fuzz-run fuzz-clean
-include $(wildcard $(FUZZ_BUILD)/obj/*/*.d)
