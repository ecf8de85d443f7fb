// Evaluates flags through the published OFREP provider for server JavaScript, unchanged:
//   node evaluate.mjs BASE_URL TOKEN < [{"flag": ..., "type": "string"|"boolean", "default": ...,
//                                        "context": {...}}, ...]
// prints one JSON list of the evaluation details (tests/ofrep/test_js_provider.py).
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const [baseUrl, token] = process.argv.slice(2);
let input = '';
for await (const chunk of process.stdin) input += chunk;

await OpenFeature.setProviderAndWait(
  new OFREPProvider({ baseUrl, headers: { Authorization: `Bearer ${token}` } }),
);
const client = OpenFeature.getClient();
const details = [];
for (const { flag, type, default: fallback, context } of JSON.parse(input)) {
  const evaluate = type === 'boolean' ? client.getBooleanDetails : client.getStringDetails;
  const found = await evaluate.call(client, flag, fallback, context);
  details.push({
    flagKey: found.flagKey,
    value: found.value,
    variant: found.variant ?? null,
    reason: found.reason ?? null,
    errorCode: found.errorCode ?? null,
    flagMetadata: found.flagMetadata ?? {},
  });
}
await OpenFeature.close();
process.stdout.write(JSON.stringify(details));
