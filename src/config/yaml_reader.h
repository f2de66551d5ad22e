// YamlReader: reads one YAML mapping against a fixed set of keys, collecting every error with its key path.
// Unknown keys, wrong types and out-of-range values each produce "<path>: <reason>".
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

namespace inferd::config {

class YamlReader {
 public:
  // `errors` outlives the reader and collects messages from it and every child reader.
  YamlReader(const YAML::Node& node, std::string path, std::vector<std::string>* errors);

  // Fields read through Get*/Child/List are the known keys; Finish() reports the rest.
  void Get(const char* key, std::string* out);
  void Get(const char* key, bool* out);
  void Get(const char* key, int32_t* out, int64_t min, int64_t max);
  void Get(const char* key, int64_t* out, int64_t min, int64_t max);
  void Get(const char* key, double* out, double min, double max);
  void Get(const char* key, std::vector<std::string>* out);
  // Like Get(string) but the value must be one of `allowed`.
  void GetEnum(const char* key, std::string* out, std::initializer_list<const char*> allowed);
  // Byte sizes accept integers or strings with a unit: "256MiB", "1GiB", "512KiB", "1000000".
  void GetBytes(const char* key, int64_t* out, int64_t min);

  // Calls `fn` with a reader for mapping `key` when present.
  void Child(const char* key, const std::function<void(YamlReader&)>& fn);
  // Calls `fn` for each mapping in sequence `key`, with paths like "models[0]". Returns false if absent.
  bool List(const char* key, const std::function<void(YamlReader&, size_t)>& fn);

  void Error(const std::string& key, const std::string& reason);
  const std::string& path() const { return path_; }
  // Reports keys present in the mapping that no Get/Child/List asked for.
  void Finish();

 private:
  std::string KeyPath(const std::string& key) const;
  // Returns the node for `key`, or an undefined node; marks the key as known.
  YAML::Node Lookup(const char* key);

  YAML::Node node_;
  std::string path_;
  std::vector<std::string>* errors_;
  std::set<std::string> known_;
};

}  // namespace inferd::config
