// Browser client of `strata serve` for the strata-serve client tests (bundled by esbuild).
//
// Query parameters:
//   image   URL of an OME-Zarr image served by `strata serve` (a `.ome.zarr/` folder, real or
//           the virtual view of an `.ozx` file), on another origin than this page
//   level   multiscale dataset index to read (default 0); its path comes from the NGFF metadata
//   region  JSON list of [start, stop] per axis of that array
//   suffix  "1": read shard indexes with suffix ranges (`Range: bytes=-N`, needs a CORS
//           preflight); otherwise zarrita's default HEAD + `bytes=a-b`
//
// Result: JSON {status: "ok", path, dtype, shape, data (flat, C order), missingKeyIsAbsent,
// requests (method, url, range, status, contentRange of each fetch)} or {status: "error",
// error}, shown in #result and POSTed to ./result.
import * as zarr from "zarrita";

// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78.
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32c(bytes) {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC32C_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// zarrita's own crc32c codec strips the 4 checksum bytes without checking them; this one
// verifies them, so a wrong byte range from the server (e.g. a bad suffix range on a shard
// index) fails the read instead of decoding garbage offsets.
class VerifyingCrc32c {
  kind = "bytes_to_bytes";
  static fromConfig() {
    return new VerifyingCrc32c();
  }
  encode() {
    throw new Error("crc32c encode is not needed by a reader");
  }
  decode(bytes) {
    const body = bytes.subarray(0, bytes.length - 4);
    const tail = bytes.subarray(bytes.length - 4);
    const stored = (tail[0] | (tail[1] << 8) | (tail[2] << 16) | (tail[3] << 24)) >>> 0;
    const actual = crc32c(body);
    if (stored !== actual) {
      throw new Error(`crc32c mismatch: stored ${stored}, computed ${actual} over ${body.length} bytes`);
    }
    return body;
  }
  computeEncodedSize(size) {
    return size + 4;
  }
}
zarr.registry.set("crc32c", async () => VerifyingCrc32c);

// Shows the result in #result and POSTs it to ./result (with this page's query string) on the
// page's own origin: the test's page server waits for that POST (a DOM dump of headless
// Chromium can come before the WebAssembly zstd decoder has finished: virtual time does not
// wait for it).
async function report(result) {
  const text = JSON.stringify(result);
  const el = document.getElementById("result");
  el.textContent = text;
  el.dataset.status = result.status;
  await fetch(new URL("result" + location.search, location.href), { method: "POST", body: text });
}

async function main() {
  const params = new URLSearchParams(location.search);
  const image = params.get("image");
  if (!image) throw new Error("missing ?image=");
  const level = Number(params.get("level") ?? "0");
  const region = JSON.parse(params.get("region") ?? "null");
  const useSuffixRequest = params.get("suffix") === "1";

  const requests = [];
  const store = new zarr.FetchStore(image, {
    useSuffixRequest,
    async fetch(request) {
      const response = await fetch(request);
      requests.push({
        method: request.method,
        url: request.url,
        range: request.headers.get("Range"),
        status: response.status,
        contentRange: response.headers.get("Content-Range"),
      });
      return response;
    },
  });
  // A missing key must come back as a readable 404 (CORS headers on errors too), which
  // zarrita reads as "absent"; a 404 without CORS headers is a network error in a browser.
  const missingKeyIsAbsent = (await store.get("/no-such-key/zarr.json")) === undefined;
  const group = await zarr.open.v3(store, { kind: "group" });
  const multiscales = group.attrs?.ome?.multiscales ?? group.attrs?.multiscales;
  if (!multiscales) throw new Error("no NGFF multiscales in the image's zarr.json");
  const path = multiscales[0].datasets[level].path;
  const arr = await zarr.open.v3(group.resolve(path), { kind: "array" });
  const selection = region ? region.map(([a, b]) => zarr.slice(a, b)) : arr.shape.map(() => null);
  const chunk = await zarr.get(arr, selection);
  await report({
    status: "ok",
    path,
    dtype: arr.dtype,
    shape: chunk.shape,
    missingKeyIsAbsent,
    data: Array.from(chunk.data, Number),
    requests,
  });
}

main().catch((err) => report({ status: "error", error: String(err?.stack ?? err) }));
