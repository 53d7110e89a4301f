// Test certificates made at test time with the `openssl` command in a
// temporary directory (removed afterwards): a CA and leaf certificates it
// signs. No private key is ever committed.
//
//   itest::TlsCerts certs;
//   ASSERT_EQ(certs.init(), "");                  // CA + "server" for localhost, 127.0.0.1
//   cfg.tls.cert_file = certs.pem("server");
//   cfg.tls.key_file = certs.key("server");
//   ASSERT_EQ(certs.issue("other", "other.test"), "");   // DNS:other.test
#pragma once

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/integration/peer_process.hpp"

namespace itest {

class TlsCerts {
 public:
  TlsCerts() = default;
  ~TlsCerts() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  TlsCerts(const TlsCerts&) = delete;
  TlsCerts& operator=(const TlsCerts&) = delete;

  // "" or what failed.
  std::string init() {
    char tmpl[] = "/tmp/ringlink-tls-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return "mkdtemp failed";
    dir_ = tmpl;
    std::string err = run({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                           dir_ + "/ca.key", "-out", ca(), "-days", "2", "-subj", "/CN=ringlink test CA"});
    if (!err.empty()) return err;
    return issue("server", "localhost", "IP:127.0.0.1");
  }

  // A leaf named `cn` (also its first DNS name), signed by the CA; `extra`
  // adds subjectAltName entries ("IP:...", "DNS:...").
  std::string issue(const std::string& name, const std::string& cn, const std::string& extra = "") {
    const std::string base = dir_ + "/" + name;
    std::ofstream(base + ".ext") << "subjectAltName=DNS:" << cn << (extra.empty() ? "" : "," + extra) << "\n";
    std::string err = run({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                           base + ".key", "-out", base + ".csr", "-subj", "/CN=" + cn});
    if (!err.empty()) return err;
    return run({"x509", "-req", "-in", base + ".csr", "-CA", ca(), "-CAkey", dir_ + "/ca.key", "-CAcreateserial",
                "-out", base + ".pem", "-days", "2", "-extfile", base + ".ext"});
  }

  std::string ca() const { return dir_ + "/ca.pem"; }
  std::string pem(const std::string& name) const { return dir_ + "/" + name + ".pem"; }
  std::string key(const std::string& name) const { return dir_ + "/" + name + ".key"; }
  const std::string& dir() const { return dir_; }

  // Runs `openssl args...`; "" on success.
  static std::string run(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    return run_peer(args, std::chrono::seconds(30));
  }

 private:
  std::string dir_;
};

}  // namespace itest
