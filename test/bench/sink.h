// sink.h — the upstream SMTP sink of the benchmark (sink.cpp).
#pragma once

#include <string>

namespace bench {

// Serves on 127.0.0.1:PORT with THREADS event loops (SO_REUSEPORT) until the process is killed.
int sinkMain(int port, int threads, const std::string& cert, const std::string& key);

}  // namespace bench
