#include "server/request_attribution.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace inferd::server {
namespace {

TEST(RequestAttributionTest, FindsWhatWasRememberedAndRepointsAnId) {
  RequestAttribution a(1024);
  EXPECT_FALSE(a.Find("x").has_value());
  a.Remember("x", {2, RequestClass::kRealtime});
  ASSERT_TRUE(a.Find("x").has_value());
  EXPECT_EQ(a.Find("x")->pool, 2u);
  EXPECT_EQ(a.Find("x")->cls, RequestClass::kRealtime);
  a.Remember("x", {1, RequestClass::kComplex});
  EXPECT_EQ(a.Find("x")->pool, 1u);
  EXPECT_EQ(a.size(), 1u);
}

TEST(RequestAttributionTest, StaysWithinCapacityAndForgetsTheOldestFirst) {
  RequestAttribution a(160);  // 16 shards x 10
  for (int i = 0; i < 5000; ++i) a.Remember("id-" + std::to_string(i), {0, RequestClass::kComplex});
  EXPECT_LE(a.size(), 160u);
  EXPECT_GE(a.size(), 150u);  // every shard full but a few: ids spread over all of them
  EXPECT_FALSE(a.Find("id-0").has_value());
  EXPECT_TRUE(a.Find("id-4999").has_value());
}

TEST(RequestAttributionTest, ConcurrentWritersAndReaders) {
  RequestAttribution a(100000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&a, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        a.Remember(id, {static_cast<size_t>(t), RequestClass::kRealtime});
        ASSERT_EQ(a.Find(id)->pool, static_cast<size_t>(t));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(a.size(), 8000u);
}

}  // namespace
}  // namespace inferd::server
