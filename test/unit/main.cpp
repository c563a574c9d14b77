#define BOOST_TEST_MODULE subproxy_unit
#include <boost/test/unit_test.hpp>
