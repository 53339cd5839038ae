// The closed catalogue of errors Tollgate itself produces. A code's status and OpenAI error type
// never vary; docs/errors.md documents each code and errors.test.ts keeps the two in step.
// Messages may name a `{param}` or other placeholders filled from GatewayError.vars.

export type OpenAiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'api_error';

export interface ErrorSpec {
  status: number;
  type: OpenAiErrorType;
  /** Message template; `{name}` is replaced from the error's vars, `{publicUrl}` from config. */
  message: string;
  /**
   * false: a retry cannot succeed soon, so the answer says `x-should-retry: false` (the OpenAI
   * SDKs retry every 429 and 5xx otherwise). An error whose Retry-After is over a minute says so
   * too, whatever its code (errors/http.ts).
   */
  retry?: false;
}

export const catalogue = {
  invalid_json: {
    status: 400,
    type: 'invalid_request_error',
    message: 'The request body is not valid JSON: {detail}',
  },
  invalid_request: {
    status: 400,
    type: 'invalid_request_error',
    message: 'Invalid request: {detail}',
  },
  model_kind_mismatch: {
    status: 400,
    type: 'invalid_request_error',
    message: "The model '{model}' is of type {kind} and cannot be used with {path}; use a model of type {expected}.",
  },
  context_length_exceeded: {
    status: 400,
    type: 'invalid_request_error',
    message: "This model's maximum context length is {limit} tokens, and the messages alone come to more than that. Shorten the messages or use a model with a longer context.",
  },
  image_input_not_allowed: {
    status: 400,
    type: 'invalid_request_error',
    message: 'Image inputs are not available on your plan [plan.rule:{rule}]. Remove the image parts from the messages, or update your payment method: {publicUrl}/app/billing',
  },
  too_many_images: {
    status: 400,
    type: 'invalid_request_error',
    message: 'Your plan generates at most {limit} image(s) per request with {model} [plan.rule:{rule}]; the request asked for {n}.',
  },
  image_size_not_allowed: {
    status: 400,
    type: 'invalid_request_error',
    message: '{detail} [plan.rule:{rule}]',
  },
  max_output_tokens_exceeded: {
    status: 400,
    type: 'invalid_request_error',
    message: 'Your plan allows at most {limit} output tokens per request [plan.rule:{rule}]; lower {param}.',
  },
  invalid_api_key: {
    status: 401,
    type: 'authentication_error',
    message: 'This request requires a valid API key. You can create a new API key on the Keys page: {publicUrl}/app/keys',
  },
  api_key_expired: {
    status: 401,
    type: 'authentication_error',
    message: 'This API key expired at {expiresAt}. You can create a new API key on the Keys page: {publicUrl}/app/keys',
  },
  account_suspended: {
    status: 403,
    type: 'permission_error',
    message: 'This account is suspended: its API keys and the web app are refused. If you think this is a mistake, contact the operator of {publicUrl}.',
  },
    admin_unauthorized: {
    status: 401,
    type: 'authentication_error',
    message: 'The admin API requires `Authorization: Bearer <TOLLGATE_ADMIN_TOKEN>`.{detail}',
  },
  metrics_unauthorized: {
    status: 401,
    type: 'authentication_error',
    message: '/metrics requires `Authorization: Bearer <server.metricsToken>`.',
  },
  session_required: {
    status: 401,
    type: 'authentication_error',
    message: 'Sign in to continue: {publicUrl}/app/signin',
  },
  invalid_credentials: {
    status: 401,
    type: 'authentication_error',
    message: 'The email or password is not right.',
  },
  csrf_failed: {
    status: 403,
    type: 'permission_error',
    message: 'The request is missing its CSRF token or the token does not match. Reload the page and try again.',
  },
  session_changed: {
    status: 409,
    type: 'invalid_request_error',
    message: 'This page was opened for another account: someone signed in or out in another tab or window. The page now shows the account signed in; nothing was changed.',
  },
    resource_exhausted: {
    status: 403,
    type: 'rate_limit_error',
    message: 'You have exhausted the available [plan.rule:{rule}] resource limit. Update your payment method to continue using the service. For more information please visit {publicUrl}/app/billing',
  },
  key_limit_exceeded: {
    status: 403,
    type: 'rate_limit_error',
    message: "This API key's limit of {limit} credits {per} [plan.rule:{rule}] leaves {remaining}, less than this request can cost ({worstCase}). {resets} The key's owner can raise or remove the limit on the Keys page: {publicUrl}/app/keys",
    retry: false,
  },
  request_cost_exceeded: {
    status: 403,
    type: 'permission_error',
    message: 'This request would cost up to {cost} credits, above the {limit} credits your plan allows per {kind} request [plan.rule:{rule}], so it was not processed. Update your payment method to lift the limit: {publicUrl}/app/billing',
  },
  insufficient_balance: {
    status: 403,
    type: 'permission_error',
    message: "You've run out of credits. Please top up your balance or update your payment method to continue: {publicUrl}/app/billing",
  },
  model_not_in_plan: {
    status: 403,
    type: 'permission_error',
    message: "The Pro model '{model}' is not available through the API on your plan [plan.rule:{rule}]. Update your payment method to use it: {publicUrl}/app/billing",
  },
  model_not_allowed_for_key: {
    status: 403,
    type: 'permission_error',
    message: "This API key may call only {models}, not '{model}'. The key's owner can change its models on the Keys page: {publicUrl}/app/keys",
    retry: false,
  },
  model_not_found: {
    status: 404,
    type: 'not_found_error',
    message: "The model '{model}' does not exist. GET /v1/models lists the available models.",
  },
  route_not_found: {
    status: 404,
    type: 'not_found_error',
    message: 'No route {method} {path}.{detail}',
  },
  account_not_found: {
    status: 404,
    type: 'not_found_error',
    message: "No account '{id}'.",
  },
  key_not_found: {
    status: 404,
    type: 'not_found_error',
    message: "No key '{id}'.",
  },
  email_taken: {
    status: 409,
    type: 'invalid_request_error',
    message: "An account with the email '{email}' already exists.",
  },
  idempotency_key_in_use: {
    status: 409,
    type: 'invalid_request_error',
    message: 'A top-up with this Idempotency-Key is being applied right now. Retry in a moment to see its result.',
  },
  balance_too_low: {
    status: 409,
    type: 'invalid_request_error',
    message: "Account '{id}' has {balance} credits to spare (its balance, less what requests in flight hold): a correction of {amount} would take it below zero, so nothing was taken.",
    retry: false,
  },
  idempotency_key_reused: {
    status: 422,
    type: 'invalid_request_error',
    message: 'This Idempotency-Key was used in the last 24 hours for a top-up of {previous} credits, not {amount}: nothing was added. A retry repeats the same amount; a new top-up takes a new key.',
    retry: false,
  },
  body_too_large: {
    status: 413,
    type: 'invalid_request_error',
    message: 'The request body is larger than the {limit}-byte limit.',
  },
  headers_too_large: {
    status: 431,
    type: 'invalid_request_error',
    message: 'The request headers are larger than the {limit}-byte limit.',
  },
  request_timeout: {
    status: 408,
    type: 'invalid_request_error',
    message: 'The request did not arrive whole within {seconds} seconds.',
  },
  expectation_failed: {
    status: 417,
    type: 'invalid_request_error',
    message: "The Expect header '{value}' cannot be met: only 100-continue is. Send the request without it.",
  },
  unsupported_media_type: {
    status: 415,
    type: 'invalid_request_error',
    message: "Unsupported {header} '{value}'; send {expected}.",
  },
  requests_per_day_exceeded: {
    status: 429,
    type: 'rate_limit_error',
    message: 'You have used all {limit} requests per day for {whose} [plan.rule:{rule}]. The limit resets at {resetAt}{lift}',
    retry: false,
  },
  concurrency_limit: {
    status: 429,
    type: 'rate_limit_error',
    message: 'Your plan runs {limit} request(s) at a time [plan.rule:{rule}]; wait for the running one to finish and try again.',
  },
  rate_limit_exceeded: {
    status: 429,
    type: 'rate_limit_error',
    message: 'Rate limit reached: {limit} {unit} per {window} [plan.rule:{rule}]. Try again in {retryAfter} s.',
  },
  too_many_signin_attempts: {
    status: 429,
    type: 'rate_limit_error',
    message: 'Too many sign-in attempts. Try again in {retryAfter} s.',
  },
  webhook_signature_invalid: {
    status: 400,
    type: 'invalid_request_error',
    message: 'The webhook is not signed with this endpoint\'s secret, or its signature is too old.',
  },
  top_up_not_offered: {
    status: 403,
    type: 'permission_error',
    message: 'Credits on this gateway are added by its operator. Ask them to top up your balance.',
  },
  signup_closed: {
    status: 403,
    type: 'permission_error',
    message: 'Accounts on this gateway are created by its operator. Ask them for one.',
  },
  key_creation_closed: {
    status: 403,
    type: 'permission_error',
    message: 'API keys on this gateway are created by its operator. Ask them for one; the keys you have keep working.',
  },
  too_many_signups: {
    status: 429,
    type: 'rate_limit_error',
    message: 'Too many accounts were created from your address. Try again in {retryAfter} s.',
  },
  too_many_keys: {
    status: 429,
    type: 'rate_limit_error',
    message: 'Your account created {limit} API keys today, the most one account may create in a day. Try again in {retryAfter} s (at 00:00 UTC); revoking a key does not give its place back, and the keys you have keep working.',
  },
  too_many_key_limit_changes: {
    status: 429,
    type: 'rate_limit_error',
    message: "Your account changed its API keys' settings (credit limits, expiries, models) {limit} times today, the most one account may in a day. Try again in {retryAfter} s (at 00:00 UTC); the settings as they stand keep applying.",
  },
  internal_error: {
    status: 500,
    type: 'api_error',
    message: 'The gateway hit an internal error. Quote request id {requestId} when reporting it.',
  },
  upstream_unavailable: {
    status: 502,
    type: 'api_error',
    message: "The provider '{provider}' could not be reached: {detail}",
  },
  upstream_auth_failed: {
    status: 502,
    type: 'api_error',
    message: "The provider '{provider}' refused this gateway's credentials (HTTP {upstreamStatus}). This is not about your API key: the operator must check the provider's key and access.",
    retry: false,
  },
  upstream_quota_exhausted: {
    status: 502,
    type: 'api_error',
    message: "The provider '{provider}' refused the request: this gateway's account with it has run out of quota or credit (HTTP {upstreamStatus}). This is not about your plan or balance: the operator must top up the provider account.",
    retry: false,
  },
  provider_not_configured: {
    status: 503,
    type: 'api_error',
    message: "The model '{model}' is served by provider '{provider}', which has no API key configured on this gateway. Ask the operator to set it.",
    retry: false,
  },
  limiter_unavailable: {
    status: 503,
    type: 'api_error',
    message: 'The limiter that keeps plan limits and balances cannot be reached: no request is admitted and no balance can be read or changed until it is back. Try again shortly.',
  },
  storage_unavailable: {
    status: 503,
    type: 'api_error',
    message: "The gateway's database cannot be reached. Try again shortly.",
  },
  shutting_down: {
    status: 503,
    type: 'api_error',
    message: 'This gateway is shutting down and takes no new requests. Retry the request: another instance, or this one once restarted, will answer.',
  },
  not_ready: {
    status: 503,
    type: 'api_error',
    message: 'The gateway is not ready: {detail}',
  },
  upstream_timeout: {
    status: 504,
    type: 'api_error',
    message: "The provider '{provider}' did not answer within {timeoutMs} ms ({phase}).",
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof catalogue;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(catalogue, code);
}
