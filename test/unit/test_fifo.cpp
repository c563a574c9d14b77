#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "engine/fifo.h"

using namespace subproxy;

namespace {

std::vector<int> contents(const Fifo<int>& q) { return std::vector<int>(q.begin(), q.end()); }

}  // namespace

BOOST_AUTO_TEST_SUITE(fifo)

BOOST_AUTO_TEST_CASE(order_is_kept_across_compaction) {
    // Interleaved pushes and pops over many compactions: the same order as a reference queue.
    Fifo<int> q;
    std::vector<int> model;
    std::size_t modelHead = 0;
    for (int i = 0; i < 1000; ++i) {
        q.push_back(i);
        model.push_back(i);
        if (i % 3 != 0) {
            BOOST_REQUIRE_EQUAL(q.front(), model[modelHead]);
            q.pop_front();
            ++modelHead;
        }
        BOOST_REQUIRE_EQUAL(q.size(), model.size() - modelHead);
        BOOST_REQUIRE_EQUAL(q.back(), model.back());
    }
    const std::vector<int> rest(model.begin() + static_cast<std::ptrdiff_t>(modelHead), model.end());
    BOOST_TEST(contents(q) == rest, boost::test_tools::per_element());
    while (!q.empty()) {
        q.pop_front();
    }
    BOOST_TEST(q.size() == 0u);
}

BOOST_AUTO_TEST_CASE(popped_items_are_released_at_once) {
    // A popped string gives its buffer back now (a relayed command's held replies must not
    // linger in an idle session until the next compaction).
    Fifo<std::string> q;
    q.push_back(std::string(1000, 'a'));
    q.push_back("b");
    q.pop_front();
    BOOST_TEST(q.front() == "b");
    BOOST_TEST(q.size() == 1u);
    q.emplace_back(3, 'c');
    BOOST_TEST(q.back() == "ccc");
    q.clear();
    BOOST_TEST(q.empty());
}

BOOST_AUTO_TEST_SUITE_END()
