#include "server/response_store.h"

#include <gtest/gtest.h>

namespace inferd::server {
namespace {

std::shared_ptr<const ResponseStore::Entry> E(uint64_t hash) {
  auto e = std::make_shared<ResponseStore::Entry>();
  e->hash = hash;
  e->ids = {hash};
  return e;
}

TEST(ResponseStoreTest, EvictsTheLeastRecentlyUsed) {
  ResponseStore store(2);
  store.Put("a", E(1));
  store.Put("b", E(2));
  ASSERT_NE(store.Get("a"), nullptr);  // a is now more recent than b
  store.Put("c", E(3));
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.Get("b"), nullptr);
  EXPECT_EQ(store.Get("a")->hash, 1u);
  EXPECT_EQ(store.Get("c")->hash, 3u);
}

TEST(ResponseStoreTest, PutReplacesAnExistingId) {
  ResponseStore store(2);
  store.Put("a", E(1));
  store.Put("a", E(5));
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.Get("a")->hash, 5u);
  EXPECT_EQ(store.Get("zzz"), nullptr);
}

}  // namespace
}  // namespace inferd::server
