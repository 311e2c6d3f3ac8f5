// Imported (for its effects) by every @xmpp/client script of the tests and
// benchmarks (client.mjs, send-xmppjs.mjs, bench/*.mjs):
// - the test servers have self-signed certificates: STARTTLS accepts them,
//   without Node's warning about it on every run;
// - @xmpp/client 0.14 hands "[fd00::1]" (with brackets) to net.connect, which
//   then looks that string up as a host name and fails: every IPv6-only server
//   is unreachable. The brackets are stripped, unless V6M_XMPPJS_NO_FIX=1 (to
//   show the bug).
import ConnectionTCP from "@xmpp/connection-tcp";

process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  if (String(warning).includes("NODE_TLS_REJECT_UNAUTHORIZED")) return;
  emitWarning(warning, ...rest);
};

if (process.env.V6M_XMPPJS_NO_FIX !== "1") {
  const socketParameters = ConnectionTCP.prototype.socketParameters;
  ConnectionTCP.prototype.socketParameters = function (service) {
    const params = socketParameters.call(this, service);
    if (params && typeof params.host === "string" && params.host.startsWith("[")) {
      params.host = params.host.slice(1, -1);
    }
    return params;
  };
}
