// Apollo Client's persisted-queries link against URL: two clients run the same query.
// Prints {first, second, requests: [[method, sentTheDocument], ...]}.
// Usage: NODE_PATH=<installed node_modules> node apollo_apq.cjs URL
const crypto = require("crypto");
const { ApolloClient, InMemoryCache, HttpLink, gql } = require("@apollo/client");
const { PersistedQueryLink } = require("@apollo/client/link/persisted-queries");

const url = process.argv[2];
const requests = [];

async function recordingFetch(input, init) {
  const method = (init && init.method) || "GET";
  const sent = method === "GET" ? String(input).includes("query=") : JSON.parse(init.body).query !== undefined;
  requests.push([method, sent]);
  return fetch(input, init);
}

function client() {
  const persisted = new PersistedQueryLink({
    sha256: (text) => crypto.createHash("sha256").update(text).digest("hex"),
    useGETForHashedQueries: true,
  });
  return new ApolloClient({
    cache: new InMemoryCache(),
    link: persisted.concat(new HttpLink({ uri: url, fetch: recordingFetch })),
  });
}

async function main() {
  const query = gql`query Typename { __typename }`;
  const first = await client().query({ query, fetchPolicy: "network-only" });
  const second = await client().query({ query, fetchPolicy: "network-only" });
  process.stdout.write(JSON.stringify({ first: first.data, second: second.data, requests }) + "\n");
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
  process.exit(1);
});
