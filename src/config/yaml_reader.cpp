#include "config/yaml_reader.h"

#include <cmath>
#include <limits>

namespace inferd::config {
namespace {

const char* TypeName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "null";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "undefined";
  }
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

}  // namespace

YamlReader::YamlReader(const YAML::Node& node, std::string path, std::vector<std::string>* errors)
    : node_(node), path_(std::move(path)), errors_(errors) {}

std::string YamlReader::KeyPath(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

void YamlReader::Error(const std::string& key, const std::string& reason) {
  errors_->push_back((key.empty() ? path_ : KeyPath(key)) + ": " + reason);
}

YAML::Node YamlReader::Lookup(const char* key) {
  known_.insert(key);
  if (!node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  return node_[key];
}

void YamlReader::Get(const char* key, std::string* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  if (!n.IsScalar()) return Error(key, std::string("expected a string, found ") + TypeName(n));
  *out = n.Scalar();
}

void YamlReader::Get(const char* key, bool* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  const std::string& s = n.IsScalar() ? n.Scalar() : "";
  if (s == "true") {
    *out = true;
  } else if (s == "false") {
    *out = false;
  } else {
    Error(key, "expected true or false, found " + (n.IsScalar() ? Quote(s) : std::string(TypeName(n))));
  }
}

void YamlReader::Get(const char* key, int64_t* out, int64_t min, int64_t max) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  if (!n.IsScalar()) return Error(key, std::string("expected an integer, found ") + TypeName(n));
  const std::string& s = n.Scalar();
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used, 10);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size()) return Error(key, "expected an integer, found " + Quote(s));
  if (v < min || v > max) {
    return Error(key, "must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], found " + s);
  }
  *out = v;
}

void YamlReader::Get(const char* key, int32_t* out, int64_t min, int64_t max) {
  int64_t v = *out;
  Get(key, &v, min, max);
  *out = static_cast<int32_t>(v);
}

void YamlReader::Get(const char* key, double* out, double min, double max) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  if (!n.IsScalar()) return Error(key, std::string("expected a number, found ") + TypeName(n));
  const std::string& s = n.Scalar();
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size() || !std::isfinite(v)) return Error(key, "expected a number, found " + Quote(s));
  if (v < min || v > max) {
    return Error(key, "must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], found " + s);
  }
  *out = v;
}

void YamlReader::Get(const char* key, std::vector<std::string>* out) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  if (!n.IsSequence()) return Error(key, std::string("expected a list of strings, found ") + TypeName(n));
  std::vector<std::string> values;
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar()) {
      return Error(std::string(key) + "[" + std::to_string(i) + "]",
                   std::string("expected a string, found ") + TypeName(n[i]));
    }
    values.push_back(n[i].Scalar());
  }
  *out = std::move(values);
}

void YamlReader::GetEnum(const char* key, std::string* out, std::initializer_list<const char*> allowed) {
  std::string v = *out;
  size_t before = errors_->size();
  Get(key, &v);
  if (errors_->size() != before) return;
  std::string list;
  for (const char* a : allowed) {
    if (v == a) {
      *out = v;
      return;
    }
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  Error(key, "must be one of " + list + ", found " + Quote(v));
}

void YamlReader::GetBytes(const char* key, int64_t* out, int64_t min) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined()) return;
  if (!n.IsScalar()) return Error(key, std::string("expected a byte size, found ") + TypeName(n));
  const std::string& s = n.Scalar();
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = used ? s.substr(used) : "";
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  double mult = 0;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KiB") mult = 1024.0;
  else if (unit == "MiB") mult = 1024.0 * 1024;
  else if (unit == "GiB") mult = 1024.0 * 1024 * 1024;
  else if (unit == "KB") mult = 1e3;
  else if (unit == "MB") mult = 1e6;
  else if (unit == "GB") mult = 1e9;
  if (used == 0 || mult == 0 || !std::isfinite(v) || v < 0) {
    return Error(key, "expected a byte size such as 268435456, '256MiB' or '1GiB', found " + Quote(s));
  }
  double bytes = v * mult;
  if (bytes > static_cast<double>(std::numeric_limits<int64_t>::max()) || bytes < static_cast<double>(min)) {
    return Error(key, "must be at least " + std::to_string(min) + " bytes, found " + Quote(s));
  }
  *out = static_cast<int64_t>(bytes);
}

void YamlReader::Child(const char* key, const std::function<void(YamlReader&)>& fn) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsMap()) return Error(key, std::string("expected a mapping, found ") + TypeName(n));
  YamlReader child(n, KeyPath(key), errors_);
  fn(child);
  child.Finish();
}

bool YamlReader::List(const char* key, const std::function<void(YamlReader&, size_t)>& fn) {
  YAML::Node n = Lookup(key);
  if (!n.IsDefined() || n.IsNull()) return false;
  if (!n.IsSequence()) {
    Error(key, std::string("expected a list, found ") + TypeName(n));
    return true;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    std::string item_path = KeyPath(key) + "[" + std::to_string(i) + "]";
    if (!n[i].IsMap()) {
      errors_->push_back(item_path + ": expected a mapping, found " + TypeName(n[i]));
      continue;
    }
    YamlReader child(n[i], item_path, errors_);
    fn(child, i);
    child.Finish();
  }
  return true;
}

void YamlReader::Finish() {
  if (!node_.IsMap()) return;
  for (const auto& kv : node_) {
    std::string key = kv.first.Scalar();
    if (known_.count(key)) continue;
    std::string list;
    for (const auto& k : known_) list += (list.empty() ? "" : ", ") + k;
    Error(key, "unknown key (known keys here: " + list + ")");
  }
}

}  // namespace inferd::config
