// The graphql-http server audits (serverAudits) against URL; prints one JSON array.
// Usage: NODE_PATH=<installed node_modules> node audit.cjs URL
const { serverAudits } = require("graphql-http");

async function main(url) {
  const results = [];
  for (const audit of serverAudits({ url, fetchFn: fetch })) {
    const result = await audit.fn();
    results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.reason ?? null });
  }
  process.stdout.write(JSON.stringify(results) + "\n");
}

main(process.argv[2]).catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
  process.exit(1);
});
