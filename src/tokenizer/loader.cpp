// Builds a TokenizerImpl from tokenizer.json and tokenizer_config.json. Every error names the file and
// the field; components outside the supported set are rejected by name rather than ignored.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace inferd::tokenizer {
namespace {

using nlohmann::json;

// Thrown while building; turned into a Status by LoadTokenizerImpl.
struct LoadError : std::runtime_error {
  StatusCode code;
  LoadError(StatusCode c, const std::string& msg) : std::runtime_error(msg), code(c) {}
};

json ReadJson(const std::filesystem::path& path, const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path))
      throw LoadError(StatusCode::kNotFound, name + ": not found in " + path.parent_path().string());
    throw LoadError(StatusCode::kFailedPrecondition, name + ": cannot be read (" + path.string() + ")");
  }
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  if (text.empty()) throw LoadError(StatusCode::kInvalidArgument, name + ": file is empty (" + path.string() + ")");
  try {
    json j = json::parse(text);
    if (!j.is_object()) throw LoadError(StatusCode::kInvalidArgument, name + ": top level is not a JSON object");
    return j;
  } catch (const json::parse_error& e) {
    throw LoadError(StatusCode::kInvalidArgument, name + ": malformed or truncated JSON (" + e.what() + ")");
  }
}

bool OptBool(const json& j, const char* key, bool def, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean())
    throw LoadError(StatusCode::kInvalidArgument, where + "." + key + ": expected a boolean");
  return j[key].get<bool>();
}

// tokenizer_config.json tokens are a string, null, or {"content": ...} (AddedToken form).
std::optional<std::string> ConfigToken(const json& cfg, const char* key) {
  if (!cfg.contains(key) || cfg[key].is_null()) return std::nullopt;
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  throw LoadError(StatusCode::kInvalidArgument,
                  std::string("tokenizer_config.json: ") + key + ": expected a string, null or {\"content\": ...}");
}

std::vector<AddedToken> ParseAddedTokens(const json& tj) {
  std::vector<AddedToken> tokens;
  if (!tj.contains("added_tokens") || tj["added_tokens"].is_null()) return tokens;
  const json& arr = tj["added_tokens"];
  if (!arr.is_array()) throw LoadError(StatusCode::kInvalidArgument, "tokenizer.json: added_tokens: expected an array");
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string where = "tokenizer.json: added_tokens[" + std::to_string(i) + "]";
    const json& t = arr[i];
    if (!t.is_object()) throw LoadError(StatusCode::kInvalidArgument, where + ": expected an object");
    AddedToken a;
    if (!t.contains("id") || !t["id"].is_number_integer() || t["id"].get<int64_t>() < 0 ||
        t["id"].get<int64_t>() > INT32_MAX)
      throw LoadError(StatusCode::kInvalidArgument, where + ".id: expected a non-negative integer");
    a.id = static_cast<TokenId>(t["id"].get<int64_t>());
    if (!t.contains("content") || !t["content"].is_string())
      throw LoadError(StatusCode::kInvalidArgument, where + ".content: expected a string");
    a.content = t["content"].get<std::string>();
    a.special = OptBool(t, "special", false, where);
    a.normalized = OptBool(t, "normalized", !a.special, where);
    a.lstrip = OptBool(t, "lstrip", false, where);
    a.rstrip = OptBool(t, "rstrip", false, where);
    a.single_word = OptBool(t, "single_word", false, where);
    tokens.push_back(std::move(a));
  }
  return tokens;
}

DecoderKind ParseDecoder(const json& j, const std::string& where) {
  if (j.is_null()) return DecoderKind::kNone;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw LoadError(StatusCode::kInvalidArgument, where + ": expected an object with a string 'type'");
  const std::string type = j["type"].get<std::string>();
  if (type == "ByteLevel") return DecoderKind::kByteLevel;
  if (type == "Sequence" && j.contains("decoders") && j["decoders"].is_array() && j["decoders"].size() == 1)
    return ParseDecoder(j["decoders"][0], where + ".decoders[0]");
  throw LoadError(StatusCode::kUnimplemented,
                  where + ": decoder type '" + type + "' is not supported (supported: ByteLevel, null)");
}

// Returns the ids the post-processor's single-sequence template puts before and after the text.
void ParsePostProcessor(const json& j, const std::string& where, std::vector<TokenId>* prefix,
                        std::vector<TokenId>* suffix) {
  if (j.is_null()) return;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw LoadError(StatusCode::kInvalidArgument, where + ": expected an object with a string 'type'");
  const std::string type = j["type"].get<std::string>();
  if (type == "ByteLevel") return;  // only trims offsets
  if (type == "Sequence" && j.contains("processors") && j["processors"].is_array()) {
    for (size_t i = 0; i < j["processors"].size(); ++i)
      ParsePostProcessor(j["processors"][i], where + ".processors[" + std::to_string(i) + "]", prefix, suffix);
    return;
  }
  if (type == "TemplateProcessing") {
    if (!j.contains("single") || !j["single"].is_array() || !j.contains("special_tokens") ||
        !j["special_tokens"].is_object())
      throw LoadError(StatusCode::kInvalidArgument, where + ": expected 'single' and 'special_tokens'");
    bool seen_sequence = false;
    for (const json& piece : j["single"]) {
      if (piece.contains("Sequence")) {
        seen_sequence = true;
        continue;
      }
      if (!piece.contains("SpecialToken") || !piece["SpecialToken"].contains("id"))
        throw LoadError(StatusCode::kInvalidArgument, where + ".single: unknown piece " + piece.dump());
      const std::string name = piece["SpecialToken"]["id"].get<std::string>();
      const json& st = j["special_tokens"];
      if (!st.contains(name) || !st[name].contains("ids") || !st[name]["ids"].is_array())
        throw LoadError(StatusCode::kInvalidArgument, where + ".special_tokens[\"" + name + "\"]: missing ids");
      for (const json& id : st[name]["ids"]) (seen_sequence ? suffix : prefix)->push_back(id.get<TokenId>());
    }
    return;
  }
  throw LoadError(StatusCode::kUnimplemented,
                  where + ": post-processor type '" + type +
                      "' is not supported (supported: ByteLevel, TemplateProcessing, Sequence, null)");
}

void CheckTopLevel(const json& tj) {
  static const char* kKnown[] = {"version", "truncation", "padding", "added_tokens", "normalizer",
                                 "pre_tokenizer", "model", "post_processor", "decoder"};
  for (auto it = tj.begin(); it != tj.end(); ++it) {
    bool known = false;
    for (const char* k : kKnown) known = known || it.key() == k;
    if (!known)
      throw LoadError(StatusCode::kUnimplemented, "tokenizer.json: top-level field '" + it.key() + "' is not supported");
  }
  if (tj.contains("truncation") && !tj["truncation"].is_null())
    throw LoadError(StatusCode::kUnimplemented, "tokenizer.json: truncation: only null is supported");
  if (tj.contains("padding") && !tj["padding"].is_null())
    throw LoadError(StatusCode::kUnimplemented, "tokenizer.json: padding: only null is supported");
}

std::string ByteLevelTokenBytes(const std::string& token) {
  static const std::unordered_map<char32_t, unsigned char> kCharBytes = [] {
    std::unordered_map<char32_t, unsigned char> m;
    const auto& chars = ByteLevelChars();
    for (int b = 0; b < 256; ++b) {
      size_t i = 0;
      m[NextCodePoint(chars[b], &i)] = static_cast<unsigned char>(b);
    }
    return m;
  }();
  std::string out;
  size_t i = 0;
  while (i < token.size()) {
    auto it = kCharBytes.find(NextCodePoint(token, &i));
    if (it == kCharBytes.end()) return token;  // a token with other characters decodes to its own UTF-8
    out.push_back(static_cast<char>(it->second));
  }
  return out;
}

std::unique_ptr<TokenizerImpl> Build(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw LoadError(StatusCode::kNotFound, "tokenizer directory not found: " + dir);
  const json tj = ReadJson(fs::path(dir) / "tokenizer.json", "tokenizer.json");
  const json cfg = ReadJson(fs::path(dir) / "tokenizer_config.json", "tokenizer_config.json");
  CheckTopLevel(tj);

  auto impl = std::make_unique<TokenizerImpl>();
  try {
    impl->normalizer_ = Normalizer::FromJson(tj.value("normalizer", json()), "tokenizer.json: normalizer");
    impl->pre_tokenizer_ =
        PreTokenizerPipeline::FromJson(tj.value("pre_tokenizer", json()), "tokenizer.json: pre_tokenizer");
    if (!tj.contains("model")) throw LoadError(StatusCode::kInvalidArgument, "tokenizer.json: model: missing");
    impl->model_ = BpeModel::FromJson(tj["model"], "tokenizer.json: model");
  } catch (const LoadError&) {
    throw;
  } catch (const std::runtime_error& e) {
    bool unsupported = std::string(e.what()).find("not supported") != std::string::npos;
    throw LoadError(unsupported ? StatusCode::kUnimplemented : StatusCode::kInvalidArgument, e.what());
  }
  impl->decoder_ = ParseDecoder(tj.value("decoder", json()), "tokenizer.json: decoder");

  std::vector<AddedToken> added = ParseAddedTokens(tj);
  std::vector<std::string> normalized_contents;
  for (const AddedToken& t : added) {
    std::string n = t.content;
    if (t.normalized && !impl->normalizer_.empty()) impl->normalizer_.Apply(t.content, &n);
    normalized_contents.push_back(std::move(n));
  }

  // Id tables over the model vocabulary and the added tokens (added tokens win on a shared id).
  const auto& model_tokens = impl->model_.id_to_token();
  size_t size = model_tokens.size();
  for (const AddedToken& t : added) size = std::max(size, static_cast<size_t>(t.id) + 1);
  impl->id_to_token_.assign(size, std::string());
  impl->known_.assign(size, 0);
  impl->special_.assign(size, 0);
  for (const auto& [tok, id] : impl->model_.vocab()) {
    impl->id_to_token_[id] = tok;
    impl->known_[id] = 1;
  }
  for (const AddedToken& t : added) {
    impl->id_to_token_[t.id] = t.content;
    impl->known_[t.id] = 1;
    impl->added_by_content_[t.content] = t.id;
  }
  // tokenizers skips a special token by content on decode, so every id with that content is special.
  std::unordered_set<std::string> special_contents;
  for (const AddedToken& t : added)
    if (t.special) special_contents.insert(t.content);
  for (size_t id = 0; id < size; ++id)
    if (impl->known_[id] && special_contents.count(impl->id_to_token_[id])) impl->special_[id] = 1;
  impl->token_bytes_.resize(size);
  for (size_t id = 0; id < size; ++id) {
    if (!impl->known_[id]) continue;
    impl->token_bytes_[id] = impl->decoder_ == DecoderKind::kByteLevel
                                 ? ByteLevelTokenBytes(impl->id_to_token_[id])
                                 : impl->id_to_token_[id];
  }
  impl->added_.Build(std::move(added), normalized_contents);

  // BOS / EOS: tokenizer_config.json's add_bos_token / add_eos_token when present (what transformers'
  // Llama tokenizers apply), else the Llama defaults for Llama tokenizer classes, else the post-processor.
  std::vector<TokenId> pp_prefix, pp_suffix;
  ParsePostProcessor(tj.value("post_processor", json()), "tokenizer.json: post_processor", &pp_prefix, &pp_suffix);
  auto resolve = [&](const char* key) -> std::optional<TokenId> {
    std::optional<std::string> tok = ConfigToken(cfg, key);
    if (!tok) return std::nullopt;
    std::optional<TokenId> id = impl->TokenToId(*tok);
    if (!id)
      throw LoadError(StatusCode::kInvalidArgument,
                      std::string("tokenizer_config.json: ") + key + ": '" + *tok + "' is not in the vocabulary");
    (std::string(key) == "bos_token" ? impl->bos_token_ : impl->eos_token_) = *tok;
    return id;
  };
  impl->bos_id_ = resolve("bos_token");
  impl->eos_id_ = resolve("eos_token");
  const std::string cls = cfg.contains("tokenizer_class") && cfg["tokenizer_class"].is_string()
                              ? cfg["tokenizer_class"].get<std::string>()
                              : std::string();
  const bool llama_class = cls.rfind("Llama", 0) == 0 || cls.rfind("CodeLlama", 0) == 0;
  const bool has_flags = cfg.contains("add_bos_token") || cfg.contains("add_eos_token");
  if (has_flags || llama_class) {
    impl->add_bos_ = OptBool(cfg, "add_bos_token", llama_class, "tokenizer_config.json");
    impl->add_eos_ = OptBool(cfg, "add_eos_token", false, "tokenizer_config.json");
    if (impl->add_bos_) {
      if (!impl->bos_id_)
        throw LoadError(StatusCode::kInvalidArgument, "tokenizer_config.json: add_bos_token is true but bos_token is missing");
      impl->prefix_ids_.push_back(*impl->bos_id_);
    }
    if (impl->add_eos_) {
      if (!impl->eos_id_)
        throw LoadError(StatusCode::kInvalidArgument, "tokenizer_config.json: add_eos_token is true but eos_token is missing");
      impl->suffix_ids_.push_back(*impl->eos_id_);
    }
  } else {
    impl->prefix_ids_ = pp_prefix;
    impl->suffix_ids_ = pp_suffix;
    impl->add_bos_ = impl->bos_id_ && !pp_prefix.empty() && pp_prefix.front() == *impl->bos_id_;
    impl->add_eos_ = impl->eos_id_ && !pp_suffix.empty() && pp_suffix.back() == *impl->eos_id_;
  }

  // Chat template: chat_template.jinja beside the config wins, as in transformers.
  std::string source;
  const fs::path jinja = fs::path(dir) / "chat_template.jinja";
  if (fs::exists(jinja)) {
    std::ifstream in(jinja, std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    source = buf.str();
  } else if (cfg.contains("chat_template") && !cfg["chat_template"].is_null()) {
    const json& ct = cfg["chat_template"];
    if (ct.is_string()) {
      source = ct.get<std::string>();
    } else if (ct.is_array()) {
      for (const json& e : ct)
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
          source = e["template"].get<std::string>();
    } else {
      throw LoadError(StatusCode::kInvalidArgument,
                      "tokenizer_config.json: chat_template: expected a string or a list of {name, template}");
    }
  }
  impl->chat_template_.source = source;
  impl->chat_template_.kind = ClassifyChatTemplate(source);
  return impl;
}

}  // namespace

StatusOr<std::unique_ptr<TokenizerImpl>> LoadTokenizerImpl(const std::string& dir) {
  try {
    return Build(dir);
  } catch (const LoadError& e) {
    return Status(e.code, e.what());
  } catch (const json::exception& e) {
    return Status(StatusCode::kInvalidArgument, std::string("tokenizer files in ") + dir + ": " + e.what());
  } catch (const std::exception& e) {
    return Status(StatusCode::kInvalidArgument, e.what());
  }
}

}  // namespace inferd::tokenizer
