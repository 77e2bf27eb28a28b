// ${{ values.name }}: ${{ values.description }}
const http = require("node:http");

const port = Number(process.env.PORT || ${{ values.port }});

const server = http.createServer((request, response) => {
  if (request.url === "/ready" || request.url === "/healthz") {
    response.writeHead(200, { "content-type": "text/plain" });
    response.end("ok\n");
    return;
  }
  response.writeHead(200, { "content-type": "application/json" });
  response.end(JSON.stringify({ service: "${{ values.name }}" }) + "\n");
});

server.listen(port, () => console.log(`${{ values.name }} listening on ${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
