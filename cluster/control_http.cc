#include "cluster/control_http.h"

#include <string>

#include "nlohmann/json.hpp"

namespace vigil::cluster {

namespace {

using nlohmann::json;

void Reply(httplib::Response& res, int code, const json& body) {
  res.status = code;
  res.set_content(body.dump(), "application/json");
}

int HttpCode(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument: return 400;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition: return 409;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded: return 503;
    default: return 500;
  }
}

void ReplyError(httplib::Response& res, const absl::Status& s) {
  Reply(res, HttpCode(s), {{"error", std::string(s.message())}});
}

// Parses the body as a JSON object; on failure answers 400 and returns false.
bool ParseBody(const httplib::Request& req, httplib::Response& res, json* body) {
  *body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body->is_object()) return true;
  Reply(res, 400, {{"error", "body must be a JSON object"}});
  return false;
}

// A string field, or false (and 400) when missing or not a string.
bool StringField(const json& body, const char* name, httplib::Response& res, std::string* out) {
  auto it = body.find(name);
  if (it != body.end() && it->is_string()) {
    *out = it->get<std::string>();
    return true;
  }
  Reply(res, 400, {{"error", std::string("\"") + name + "\" must be a string"}});
  return false;
}

uint64_t IdField(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_string()) {
    try {
      return std::stoull(it->get<std::string>());
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

json RegisterJson(const RegisterValue& v) {
  return {{"value", v.version == 0 ? json(nullptr) : json(v.value)}, {"version", v.version}};
}

void RegisterRegisterRoutes(httplib::Server* server, ControlPlane* cp) {
  const std::string key = R"(/api/v1/admin/registers/([^/]+))";
  server->Get(key, [cp](const httplib::Request& req, httplib::Response& res) {
    absl::StatusOr<RegisterValue> v = cp->GetRegister(req.matches[1].str());
    if (!v.ok()) return ReplyError(res, v.status());
    Reply(res, 200, RegisterJson(*v));
  });
  server->Put(key, [cp](const httplib::Request& req, httplib::Response& res) {
    json body;
    std::string value;
    if (!ParseBody(req, res, &body) || !StringField(body, "value", res, &value)) return;
    absl::StatusOr<uint64_t> version = cp->PutRegister(req.matches[1].str(), value);
    if (!version.ok()) return ReplyError(res, version.status());
    Reply(res, 200, {{"version", *version}});
  });
  server->Post(key + "/cas", [cp](const httplib::Request& req, httplib::Response& res) {
    json body;
    std::string expected, value;
    if (!ParseBody(req, res, &body) || !StringField(body, "expected_value", res, &expected) ||
        !StringField(body, "value", res, &value)) {
      return;
    }
    RegisterValue current;
    absl::StatusOr<uint64_t> version =
        cp->CompareAndSetRegister(req.matches[1].str(), expected, value, &current);
    if (absl::IsFailedPrecondition(version.status())) {
      json j = RegisterJson(current);
      j["ok"] = false;
      return Reply(res, 409, j);
    }
    if (!version.ok()) return ReplyError(res, version.status());
    Reply(res, 200, {{"ok", true}, {"version", *version}});
  });
}

void RegisterMembershipRoutes(httplib::Server* server, ControlPlane* cp) {
  const std::string prefix = "/api/v1/admin/cluster/";
  server->Post(prefix + "add-node", [cp](const httplib::Request& req, httplib::Response& res) {
    json body;
    std::string grpc_address;
    if (!ParseBody(req, res, &body) || !StringField(body, "grpc_address", res, &grpc_address)) {
      return;
    }
    PeerAddress addr{grpc_address, body.value("http_address", std::string())};
    absl::Status s = cp->AddNode(IdField(body, "id"), addr);
    if (!s.ok()) return ReplyError(res, s);
    Reply(res, 200, {{"ok", true}});
  });
  server->Post(prefix + "remove-node", [cp](const httplib::Request& req, httplib::Response& res) {
    json body;
    if (!ParseBody(req, res, &body)) return;
    absl::Status s = cp->RemoveNode(IdField(body, "id"), body.value("force", false));
    if (!s.ok()) return ReplyError(res, s);
    Reply(res, 200, {{"ok", true}});
  });
  server->Post(prefix + "transfer-leader",
               [cp](const httplib::Request& req, httplib::Response& res) {
                 json body = json::object();
                 if (!req.body.empty() && !ParseBody(req, res, &body)) return;
                 absl::StatusOr<NodeId> leader = cp->TransferLeader(IdField(body, "target"));
                 if (!leader.ok()) return ReplyError(res, leader.status());
                 Reply(res, 200, {{"leader", *leader}});
               });
}

// Raft's status means nothing before the node's Raft runs (term 0, no leader,
// nothing committed): 503 until then, so pollers never mistake it for a state.
bool ReplyIfNotStarted(const ControlPlane* cp, httplib::Response& res) {
  if (cp->started()) return false;
  Reply(res, 503, {{"error", "the Raft control plane is not running yet (the node is starting)"}});
  return true;
}

}  // namespace

void RegisterControlRoutes(httplib::Server* server, ControlPlane* cp) {
  server->Get("/api/v1/status/cluster", [cp](const httplib::Request&, httplib::Response& res) {
    if (ReplyIfNotStarted(cp, res)) return;
    Reply(res, 200, cp->StatusJson());
  });
  server->Get("/debug/raft", [cp](const httplib::Request&, httplib::Response& res) {
    if (ReplyIfNotStarted(cp, res)) return;
    Reply(res, 200, cp->DebugRaftJson());
  });
  RegisterRegisterRoutes(server, cp);
  RegisterMembershipRoutes(server, cp);
}

}  // namespace vigil::cluster
