// Unicode character classes the `tokenizers` library uses outside its regexes (ICU-backed).
#pragma once

namespace inferd::tokenizer {

// Rust `char::is_numeric`: general category Nd, Nl or No.
bool IsNumeric(char32_t c);
// Rust regex `\s`: the White_Space property.
bool IsWhiteSpace(char32_t c);
// Rust regex `\w`: Alphabetic, Mark, Decimal_Number, Connector_Punctuation or Join_Control.
bool IsWordChar(char32_t c);

}  // namespace inferd::tokenizer
