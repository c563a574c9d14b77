# subproxy — transparent SMTP submission proxy.  See README.md.
#   make          build proxy/subproxy
#   make check    build and run every test (unit + integration); ends with "N passed, N failed"
#   make deps     install the Debian packages needed to build, test and demo
#   make certs    self-signed test CA and certificates under certs/
#   make demo     local Postfix MSA + subproxy in front + one message through it
#   make install  PREFIX=/usr/local DESTDIR=

CXX      ?= g++
PKGS     := libevent libevent_openssl libevent_pthreads openssl libsasl2 libconfig++
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++17 -Wall -Wextra -Werror -pthread -MMD -MP -Iproxy -Isasl
CXXFLAGS += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread

PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  := 0.1.0
CXXFLAGS += -DSUBPROXY_VERSION='"$(VERSION)"'

# Pure protocol code: no libevent, no sockets.  Unit-tested in test/unit.
PURE_SRCS := proxy/base64.cpp proxy/xtext.cpp proxy/sasl_payload.cpp proxy/line_reader.cpp \
             proxy/smtp_command.cpp proxy/smtp_reply.cpp proxy/data_scanner.cpp \
             proxy/ehlo_caps.cpp proxy/config.cpp proxy/client_protocol.cpp \
             proxy/upstream_protocol.cpp proxy/text_util.cpp
# Abuse defence (issue 3) and deployment kit (issue 4) add their pure files here.
PURE_SRCS +=
PURE_SRCS += proxy/metrics.cpp proxy/migration_report.cpp
PURE_SRCS += proxy/cidr.cpp proxy/ban_list.cpp
PURE_SRCS += proxy/trap.cpp proxy/dnsbl_filter.cpp proxy/access_list.cpp
# I/O glue: libevent, OpenSSL, Cyrus SASL, syslog, sockets: every other source file.
IO_SRCS   := $(filter-out $(PURE_SRCS) proxy/main.cpp,$(wildcard proxy/*.cpp sasl/*.cpp))
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

check: proxy/subproxy test/unit/unit_tests certs/.stamp
	@test/run-all.sh

unit: test/unit/unit_tests
	test/unit/unit_tests

certs: certs/.stamp
certs/.stamp: certs/make-certs.sh
	certs/make-certs.sh certs
	@touch $@

deps:
	test/deps.sh

demo:
	$(MAKE) deps
	$(MAKE) all certs
	test/demo.sh

install: proxy/subproxy
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8 \
	    $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)/etc/subproxy
	install -m 755 proxy/subproxy $(DESTDIR)$(PREFIX)/sbin/subproxy
	install -m 644 man/subproxy.8 $(DESTDIR)$(PREFIX)/share/man/man8/subproxy.8
	install -m 644 man/subproxy.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/subproxy.conf.5
	install -m 644 examples/subproxy.conf $(DESTDIR)/etc/subproxy/subproxy.conf.example
	install -m 644 sasl/subproxy.conf $(DESTDIR)/etc/subproxy/sasl-subproxy.conf.example
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/doc/subproxy/examples
	sed 's#/usr/local/sbin/subproxy#$(PREFIX)/sbin/subproxy#g' examples/systemd/subproxy.service \
	    > $(DESTDIR)$(PREFIX)/lib/systemd/system/subproxy.service
	chmod 644 $(DESTDIR)$(PREFIX)/lib/systemd/system/subproxy.service
	cp -R examples/. $(DESTDIR)$(PREFIX)/share/doc/subproxy/examples/

manlint:
	groff -man -ww -z man/subproxy.8 man/subproxy.conf.5

clean:
	rm -f proxy/*.o proxy/*.d sasl/*.o sasl/*.d test/unit/*.o test/unit/*.d \
	      proxy/subproxy test/unit/unit_tests

.PHONY: all check unit certs deps demo install manlint clean
-include $(wildcard proxy/*.d sasl/*.d test/unit/*.d)
