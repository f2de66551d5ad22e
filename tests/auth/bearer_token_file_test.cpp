#include "auth/bearer_token_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace inferd::auth {
namespace {

class BearerTokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/inferd-token-file-XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& text) {
    const std::string path = dir_ + "/token";
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(BearerTokenFileTest, DropsSurroundingWhitespace) {
  StatusOr<std::string> t = ReadBearerTokenFile(Write("  \tedge-token-1\r\n\n"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, "edge-token-1");
}

TEST_F(BearerTokenFileTest, RefusesMissingEmptyAndSpacedFilesNamingThePath) {
  const std::string missing = dir_ + "/none";
  StatusOr<std::string> t = ReadBearerTokenFile(missing);
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.status().message(), "cannot read " + missing + ": No such file or directory");
  const std::string path = Write(" \n");
  EXPECT_EQ(ReadBearerTokenFile(path).status().message(), path + " is empty");
  Write("two tokens\n");
  EXPECT_EQ(ReadBearerTokenFile(path).status().message(),
            path + " must hold one token of printable ASCII without spaces");
  Write("caf\xc3\xa9\n");
  EXPECT_EQ(ReadBearerTokenFile(path).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace inferd::auth
