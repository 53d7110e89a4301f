// Compact JSON written straight to a FILE, for the load tools' --json
// reports. ringlink-load and raw_load (bench/peers/raw) both write with it so
// that scripts read their figures alike: the same number format, the same
// escaping. It needs nothing but the standard library, so that raw_load
// builds whatever state the engine is in.
//
//   JsonWriter j(file);
//   j.open('{');
//   j.field("conns", std::uint64_t{4});    // integers exact
//   j.field("rate", 1234.5);               // doubles as %.6g, non-finite as null
//   j.key("warnings");
//   j.open('[');
//   j.value("slow start");
//   j.close(']');
//   j.close('}');                          // {"conns":4,"rate":1234.5,"warnings":["slow start"]}
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

namespace ringlink::load {

class JsonWriter {
 public:
  explicit JsonWriter(std::FILE* f) : f_(f) {}

  // c is '{' or '[', and the matching close.
  void open(char c) {
    comma();
    std::fputc(c, f_);
    fresh_ = true;
  }
  void close(char c) {
    std::fputc(c, f_);
    fresh_ = false;
  }
  void key(const char* k) {
    comma();
    quoted(k);
    std::fputc(':', f_);
    fresh_ = true;  // the value follows without a comma
  }

  void value(double v) {
    comma();
    if (std::isfinite(v)) std::fprintf(f_, "%.6g", v); else std::fputs("null", f_);
  }
  void value(std::uint64_t v) {
    comma();
    std::fprintf(f_, "%llu", static_cast<unsigned long long>(v));
  }
  void value(bool v) {
    comma();
    std::fputs(v ? "true" : "false", f_);
  }
  // Without this overload a string literal would convert to bool.
  void value(const char* s) {
    comma();
    quoted(s);
  }
  void value(const std::string& s) { value(s.c_str()); }

  template <class T>
  void field(const char* k, const T& v) {
    key(k);
    value(v);
  }
  // An object of counts by code: {"104":2,"111":1}.
  void counts(const char* k, const std::map<int, std::uint64_t>& m) {
    key(k);
    open('{');
    for (const auto& [code, n] : m) field(std::to_string(code).c_str(), n);
    close('}');
  }

 private:
  void comma() {
    if (!fresh_) std::fputc(',', f_);
    fresh_ = false;
  }
  void quoted(const char* s) {
    std::fputc('"', f_);
    for (; *s != '\0'; ++s) {
      const auto c = static_cast<unsigned char>(*s);
      if (c == '"' || c == '\\') {
        std::fputc('\\', f_);
        std::fputc(c, f_);
      } else if (c < 0x20) {
        std::fprintf(f_, "\\u%04x", c);
      } else {
        std::fputc(c, f_);
      }
    }
    std::fputc('"', f_);
  }

  std::FILE* f_;
  bool fresh_ = true;
};

}  // namespace ringlink::load
