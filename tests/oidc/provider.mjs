// A real OpenID provider (npm `oidc-provider`) for proxdesk's sign-in tests, configured by a JSON file
// whose path is the only argument:
//
//   { "port": 41234,                         issuer http://127.0.0.1:<port>
//     "clients": [{ "client_id", "client_secret", "redirect_uris", "post_logout_redirect_uris" }],
//     "claims_in_id_token": true,            false: profile, e-mail and groups only through userinfo
//     "accounts": { "<login>": { "preferred_username", "name", "email", "email_verified", "groups" } },
//     "tamper": null }                       see below
//
// The built-in development login form accepts any password; the login names the account, which is also
// its `sub`. The file is read again at every request for `accounts` and `tamper`, so a test changes a
// person's groups, or how the provider misbehaves, by rewriting it.
//
// `tamper` makes the token endpoint hand out an ID token the client must refuse (signed properly with
// the provider's own key unless said otherwise): "audience" (issued to another client), "azp" (a second,
// untrusted audience), "nonce", "expired", "issuer", "foreign-key" (signed by a key the provider does not
// list), "empty-sub" (a subject of no characters), "long-sub" (one of 256, over the 255 OpenID allows);
// "rotate" signs with a new key that the key set lists from then on (a key rotation).
//
// GET /_test/stats answers how often discovery, the key set, the token and userinfo endpoints were asked.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import Provider from "oidc-provider";

const configPath = process.argv[2];
const read = () => JSON.parse(readFileSync(configPath, "utf8"));
const initial = read();
const issuer = `http://127.0.0.1:${initial.port}`;

function rsaKey(kid) {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { ...privateKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" };
}
const publicPart = ({ kty, n, e, kid, alg, use }) => ({ kty, n, e, kid, alg, use });
const keys = { signing: rsaKey("signing-1"), rotated: rsaKey("rotated-2"), foreign: rsaKey("foreign-3") };

const provider = new Provider(issuer, {
  clients: initial.clients,
  jwks: { keys: [keys.signing] },
  pkce: { required: () => true },
  conformIdTokenClaims: !initial.claims_in_id_token,
  claims: {
    openid: ["sub"],
    profile: ["name", "preferred_username"],
    email: ["email", "email_verified"],
    groups: ["groups"],
  },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  cookies: { keys: ["proxdesk-test-provider-cookies"] },
  async findAccount(_ctx, id) {
    const account = read().accounts[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ ...account, sub: id }) };
  },
});

const base64url = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
const decode = (part) => JSON.parse(Buffer.from(part, "base64url").toString());

function tampered(idToken, mode) {
  const [h, p] = idToken.split(".");
  const header = decode(h);
  const payload = decode(p);
  let key = keys.signing;
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case "audience": payload.aud = "another-client"; delete payload.azp; break;
    case "azp": payload.aud = [payload.aud, "another-client"]; payload.azp = "another-client"; break;
    case "nonce": payload.nonce = "not-the-nonce-of-this-sign-in"; break;
    case "expired": payload.iat = now - 7200; payload.exp = now - 3600; break;
    case "issuer": payload.iss = "http://127.0.0.1:1"; break;
    case "foreign-key": key = keys.foreign; break;
    case "empty-sub": payload.sub = ""; break;
    case "long-sub": payload.sub = "s".repeat(256); break;
    case "rotate": key = keys.rotated; break;
    default: throw new Error(`unknown tamper mode ${mode}`);
  }
  header.kid = key.kid;
  header.alg = "RS256";
  const input = `${base64url(header)}.${base64url(payload)}`;
  const signature = sign("sha256", Buffer.from(input), createPrivateKey({ key, format: "jwk" }));
  return `${input}.${signature.toString("base64url")}`;
}

const stats = { discovery: 0, jwks: 0, token: 0, userinfo: 0 };
const counted = { "/.well-known/openid-configuration": "discovery", "/jwks": "jwks", "/token": "token", "/me": "userinfo" };

provider.use(async (ctx, next) => {
  if (ctx.path === "/_test/stats") {
    ctx.body = stats;
    return;
  }
  if (counted[ctx.path]) stats[counted[ctx.path]] += 1;
  await next();
  const mode = read().tamper;
  if (!mode) return;
  if (ctx.path === "/jwks" && mode === "rotate" && ctx.body?.keys) {
    ctx.body = { keys: [...ctx.body.keys, publicPart(keys.rotated)] };
  }
  if (ctx.path === "/token" && ctx.status === 200 && ctx.body?.id_token) {
    ctx.body = { ...ctx.body, id_token: tampered(ctx.body.id_token, mode) };
  }
});

createServer(provider.callback()).listen(initial.port, "127.0.0.1", () => {
  console.log(`oidc-provider listening at ${issuer}`);
});
