import { html } from 'htm/preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, send, sseData, toApiError } from '../api';
import { ErrorBox } from '../components/error-box';
import { Meter } from '../components/meter';
import { ModelPicker } from '../components/model-picker';
import { useRefocusWhen } from '../focus';
import { fmt } from '../format';
import { useReloadOnReturn } from '../on-return';
import type { Limit, Meter as MeterData, Model } from '../types';

interface Message {
  role: 'user' | 'assistant';
  content: string;
  /** The model that answered: the conversation goes on when another is chosen, and each reply keeps its own. */
  model?: string;
  credits?: number;
  stopped?: boolean;
}

interface ImageResult {
  prompt: string;
  size: string;
  images: string[];
  credits?: number;
}

interface EmbedResult {
  input: string;
  dimensions: number;
  head: number[];
  credits?: number;
}

const COMMON_SIZES = ['1024x1024', '512x512', '1024x768', '768x1024'];

/** After Stop, when to read the meter again: the server settles a stopped stream after its drain. */
const SETTLE_CHECKS_MS = [1_000, 2_500, 5_000];
/** How long after a Stop a one-at-a-time refusal is put down to the stopped request (the first-byte limit's 60 s, and some). */
const STOPPED_RECENTLY_MS = 90_000;

type Json = Record<string, any>;

function creditsOf(body: Json | null | undefined): number | undefined {
  const c = body?.meta?.usage?.credits_used;
  return typeof c === 'number' ? c : undefined;
}

function sizesFor(model: Model): string[] {
  const sizes = model.sizes && model.sizes.length > 0 ? [...model.sizes] : [...COMMON_SIZES];
  if (model.default_size && !sizes.includes(model.default_size)) sizes.unshift(model.default_size);
  return sizes;
}

/** 1024 × 1024 pixels: what one price covers (core/pricing.ts imageUnitCredits). */
const MEGAPIXEL = 1024 * 1024;

/**
 * What one image of `size` costs, in credits; undefined when the catalog gives no price for it.
 * One price is for an image of up to a megapixel: a larger one pays it per started megapixel, as
 * the gateway charges (a 1536x1024 image costs two).
 */
function imageCost(model: Model, size: string): number | undefined {
  const per = model.price?.per_image;
  if (typeof per !== 'number') return per?.[size];
  const [w, h] = size.split('x').map(Number);
  const units = w && h ? Math.max(1, Math.ceil((w * h) / MEGAPIXEL)) : 1;
  return per * units;
}

/**
 * The size the form starts on: the cheapest priced one where prices differ by size. A model's
 * configured default was dall-e-2's 1024x1024, 40,000 of a free day's 50,000 credits in one click.
 */
function startingSize(model: Model): string {
  const sizes = sizesFor(model);
  const configured = model.default_size && sizes.includes(model.default_size) ? model.default_size : (sizes[0] ?? '');
  if (typeof model.price?.per_image !== 'object') return configured;
  const priced = sizes.filter((s) => imageCost(model, s) !== undefined);
  const cheapest = Math.min(...priced.map((s) => imageCost(model, s)!));
  return imageCost(model, configured) === cheapest ? configured : (priced.find((s) => imageCost(model, s) === cheapest) ?? configured);
}

/** The price of the image about to be made, said before Generate, and whether the day's credits cover it. */
function ImageCost({ cost, left }: { cost: number | undefined; left: number | undefined }) {
  if (cost === undefined) return null;
  const over = left !== undefined && cost > left;
  return html`<p id="image-cost" class=${`small ${over ? 'warn-text' : 'muted'}`} data-testid="image-cost">
    ${fmt(cost)} credits per image${left !== undefined && html` · ${fmt(left)} credits left`}${over ? ': more than is left, so it would be refused' : ''}
  </p>`;
}

function defaultModel(models: Model[]): string {
  const pick =
    models.find((m) => m.type === 'chat' && !m.pro && m.available !== false) ??
    models.find((m) => m.type === 'chat') ??
    models[0];
  return pick?.id ?? '';
}

const PER: Record<string, string> = { minute: 'per minute', hour: 'per hour', day: 'per day', month: 'per month', lifetime: 'in all' };
/** The box's order: what a reader meets first (a model's count, one at a time), then the budget. */
const ORDER: Limit['measure'][] = ['requests', 'concurrent', 'credits'];

/** The models a rule counts, as its filter names them: ids, else kinds and Pro or regular. */
function modelsOf(r: Limit, every: boolean): string {
  if (r.ids !== null) return r.ids.join(', ');
  const kind = r.kinds === null ? '' : `${r.kinds.join(' and ')} `;
  const words = r.pro && r.regular ? (every ? `every ${kind}model` : kind === '' ? 'all models, regular or Pro' : `${kind}models, regular or Pro`) : `${r.pro ? 'Pro' : 'regular'} ${kind}models`;
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function ruleLine(r: Limit) {
  const n = fmt(r.limit);
  const per = PER[r.window ?? ''] ?? '';
  const shared = r.api ? ', shared with your API keys' : '';
  if (r.measure === 'concurrent') return html`<strong>${r.limit === 1 ? 'One request' : `${n} requests`} at a time.</strong>`;
  if (r.measure === 'requests' && r.perModel) {
    return html`${modelsOf(r, true)}: <strong>${n} requests ${per}</strong> each.${r.regular && !r.pro ? ' Pro models are not counted.' : ''}`;
  }
  const unit = r.measure === 'requests' ? 'requests' : 'credits';
  return html`${modelsOf(r, false)}: <strong>${n} ${unit} ${per}</strong>${r.perModel ? ' each' : ''}${shared}.`;
}

/**
 * The plan's Playground limits, as the gateway counts them. Written out as the free-tier preset's
 * numbers, it told a developer whose operator set 25 requests and 100,000 credits (or who is on a
 * team plan with none of those rules) "10 requests" and "50,000 credits", beside a meter saying otherwise.
 */
function Rules({ meter }: { meter: MeterData }) {
  const limits = [...meter.limits].sort((a, b) => ORDER.indexOf(a.measure) - ORDER.indexOf(b.measure));
  if (limits.length === 0) return null;
  return html`
    <details class="rules card" open data-testid="plan-limits">
      <summary>Limits of the ${meter.plan} plan in the Playground</summary>
      <ul>
        ${limits.map((r, i) => html`<li key=${i}>${ruleLine(r)}</li>`)}
      </ul>
      <p class="muted small">
        Days are UTC.${meter.paymentMethodLifts && html` Add a payment method on <a href="/app/billing">Billing</a> to lift the daily limits.`}
      </p>
    </details>
  `;
}

/**
 * A refusal for running one request at a time, said as what it is here, without a way to Billing
 * (waiting is the way). Right after a Stop: the request stopped is still finishing at the provider
 * (the gateway lets a started call end, and reads a stopped stream's usage a little longer), so the
 * plan's slot is not free yet. Otherwise this page runs nothing, so another request of the account
 * holds the slot: one in another tab, or one this page started before it was reloaded — which got
 * the plan's message and a way to Billing, as if paying were the answer to a request still running.
 */
function explainBusy(err: ApiError, stoppedAt: number): ApiError {
  if (err.code !== 'concurrency_limit') return err;
  const message =
    Date.now() - stoppedAt <= STOPPED_RECENTLY_MS
      ? 'The request you stopped is still finishing at the provider, and the Playground runs one at a time: try again in a moment.'
      : `${err.message} None runs on this page: the one running is in another tab, through the API, or one this page started before it was reloaded.`;
  return new ApiError(err.status, err.code, message, err.requestId);
}

/**
 * Whether Billing can lift a refusal for this account: a top-up lifts a spent balance, and a payment
 * method lifts a plan's limits only on the default plan (the meter's paymentMethodLifts). An account
 * the operator put on another plan (a team's) was sent to Billing "to add a payment method", which
 * there changes nothing. Before the meter is read, the link stays.
 */
function billingLifts(meter: MeterData | null, error: ApiError | null): boolean {
  return meter === null || meter.paymentMethodLifts || error?.code === 'insufficient_balance';
}

export function PlaygroundPage() {
  const [models, setModels] = useState<Model[] | null>(null);
  const [modelsError, setModelsError] = useState<ApiError | null>(null);
  const [modelId, setModelId] = useState('');
  const [meter, setMeter] = useState<MeterData | null>(null);
  const [meterError, setMeterError] = useState<string | null>(null);

  const [prompt, setPrompt] = useState('');
  const [maxTokens, setMaxTokens] = useState(512);
  const [temperature, setTemperature] = useState(1);
  const [topP, setTopP] = useState(1);
  const [size, setSize] = useState('');
  const [imageUrl, setImageUrl] = useState('');

  const [messages, setMessages] = useState<Message[]>([]);
  const [imageResult, setImageResult] = useState<ImageResult | null>(null);
  const [embedResult, setEmbedResult] = useState<EmbedResult | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const abort = useRef<AbortController | null>(null);
  const meterSeq = useRef(0);
  const logEnd = useRef<HTMLDivElement>(null);
  const promptRef = useRef<HTMLTextAreaElement>(null);
  const stopRef = useRef<HTMLButtonElement>(null);

  const model = models?.find((m) => m.id === modelId);
  // The model selected now: a request's meter reads happen after it ends (and after a Stop, seconds
  // later), by which time another model may be selected; the meter shows the selected one's count.
  const selectedId = useRef(modelId);
  selectedId.current = modelId;

  useEffect(() => {
    api<{ data: Model[] }>('GET', '/models')
      .then(({ data }) => {
        setModels(data);
        setModelId((id) => id || defaultModel(data));
      })
      .catch((e) => setModelsError(toApiError(e)));
    return () => abort.current?.abort();
  }, []);

  const refreshMeter = useCallback(async (id: string) => {
    if (!id) return;
    const seq = ++meterSeq.current;
    try {
      const m = await api<MeterData>('GET', `/meter?model=${encodeURIComponent(id)}`);
      if (seq === meterSeq.current) {
        setMeter(m);
        setMeterError(null);
      }
    } catch (e) {
      if (seq === meterSeq.current) setMeterError(toApiError(e).message);
    }
  }, []);

  useEffect(() => {
    void refreshMeter(modelId);
  }, [modelId, refreshMeter]);
  useReloadOnReturn(() => void refreshMeter(modelId));

  useEffect(() => {
    if (model?.type === 'image') {
      setSize(startingSize(model));
    }
    setError(null);
  }, [modelId, model?.type]);

  // The answer is followed as it streams while the reader is at its end; one who scrolled up to
  // read an earlier turn is left there (every chunk pulled the page back down). A send follows again.
  const follow = useRef(true);
  /** When the last request was stopped (epoch ms): its upstream call may still hold the plan's one slot. */
  const stoppedAt = useRef(0);
  useEffect(() => {
    const onScroll = () => {
      follow.current = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 120;
    };
    window.addEventListener('scroll', onScroll, { passive: true });
    return () => window.removeEventListener('scroll', onScroll);
  }, []);
  useEffect(() => {
    if (follow.current) logEnd.current?.scrollIntoView?.({ block: 'nearest' });
  }, [messages]);

  // Send is disabled while a request runs, and Stop goes when it ends: the focus they held moves to
  // Stop, then back to the message box for the next one.
  useRefocusWhen(busy, () => stopRef.current);
  useRefocusWhen(!busy, () => promptRef.current, () => !follow.current);

  const runChat = async (text: string, signal: AbortSignal) => {
    const history: Message[] = [...messages, { role: 'user', content: text }];
    setMessages([...history, { role: 'assistant', content: '', model: modelId }]);
    const updateLast = (patch: Partial<Message>) =>
      setMessages((ms) => ms.map((m, i) => (i === ms.length - 1 ? { ...m, ...patch } : m)));
    let answer = '';
    try {
      const res = await send(
        'POST',
        '/playground/chat',
        {
          model: modelId,
          // An answer stopped before its first word is no turn: some upstreams refuse an empty
          // assistant message.
          messages: history.filter((m) => m.role !== 'assistant' || m.content !== '').map(({ role, content }) => ({ role, content })),
          max_tokens: maxTokens,
          temperature,
          top_p: topP,
        },
        signal,
      );
      if ((res.headers.get('content-type') ?? '').includes('application/json')) {
        // A non-streamed completion: show it whole.
        const body = (await res.json()) as Json;
        answer = String(body?.choices?.[0]?.message?.content ?? '');
        updateLast({ content: answer, ...(creditsOf(body) !== undefined && { credits: creditsOf(body) }) });
        return;
      }
      for await (const raw of sseData(res)) {
        const chunk = raw as Json;
        if (chunk?.error) {
          const e = chunk.error as Json;
          throw new ApiError(0, String(e.code ?? 'stream_error'), String(chunk.message ?? e.message ?? 'The model stopped with an error.'));
        }
        const delta = chunk?.choices?.[0]?.delta?.content;
        if (typeof delta === 'string' && delta !== '') {
          answer += delta;
          updateLast({ content: answer });
        }
        const credits = creditsOf(chunk);
        if (credits !== undefined) updateLast({ credits });
      }
    } catch (e) {
      const err = toApiError(e);
      if (err.code === 'aborted') {
        updateLast({ stopped: true });
        return;
      }
      if (answer === '') {
        // Refused before any output: take the turn back so it can be sent again.
        setMessages(messages);
        setPrompt((p) => p || text);
      }
      throw err;
    }
  };

  const runImage = async (text: string, signal: AbortSignal) => {
    const source = model?.image_to_image ? imageUrl.trim() : '';
    const res = await send('POST', '/playground/image', { model: modelId, prompt: text, ...(size && { size }), ...(source && { image_url: source }) }, signal);
    const body = (await res.json()) as Json;
    const data: Json[] = Array.isArray(body?.data) ? body.data : [];
    const images = data
      .map((d) => (typeof d.url === 'string' ? d.url : typeof d.b64_json === 'string' ? `data:image/png;base64,${d.b64_json}` : null))
      .filter((s): s is string => s !== null);
    setImageResult({ prompt: text, size, images, ...(creditsOf(body) !== undefined && { credits: creditsOf(body) }) });
  };

  const runEmbed = async (text: string, signal: AbortSignal) => {
    const res = await send('POST', '/playground/embed', { model: modelId, input: text }, signal);
    const body = (await res.json()) as Json;
    const vector: unknown = body?.data?.[0]?.embedding;
    const values = Array.isArray(vector) ? (vector as number[]) : [];
    setEmbedResult({
      input: text,
      dimensions: values.length,
      head: values.slice(0, 8),
      ...(creditsOf(body) !== undefined && { credits: creditsOf(body) }),
    });
  };

  const submit = async (e?: Event) => {
    e?.preventDefault();
    if (busy || !model) return;
    const text = prompt.trim();
    if (!text) {
      promptRef.current?.focus();
      return;
    }
    setError(null);
    setBusy(true);
    follow.current = true;
    const controller = new AbortController();
    abort.current = controller;
    if (model.type === 'chat') setPrompt('');
    try {
      if (model.type === 'chat') await runChat(text, controller.signal);
      else if (model.type === 'image') await runImage(text, controller.signal);
      else await runEmbed(text, controller.signal);
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.code !== 'aborted') setError(explainBusy(apiErr, stoppedAt.current));
    } finally {
      if (controller.signal.aborted) stoppedAt.current = Date.now();
      abort.current = null;
      setBusy(false);
      void refreshMeter(selectedId.current);
      // A stopped stream is settled only after the server has read the upstream a little longer
      // for its usage (metering.drainUsageMs, 2 s by default): until then the meter shows the
      // reservation. Look again once that is likely done.
      if (controller.signal.aborted) for (const ms of SETTLE_CHECKS_MS) setTimeout(() => void refreshMeter(selectedId.current), ms);
    }
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      // As the Send button does: the form's own checks first (an image-to-image model's source
      // image is required). Sent straight, Enter skipped them, and the gateway's raw 400 came back.
      const form = (e.currentTarget as HTMLTextAreaElement).form;
      if (form) form.requestSubmit();
      else void submit();
    }
  };

  const num = (setter: (n: number) => void) => (e: Event) => {
    const v = (e.currentTarget as HTMLInputElement).valueAsNumber;
    if (!Number.isNaN(v)) setter(v);
  };

  if (modelsError) {
    return html`<section class="page"><h1 tabindex="-1">Playground</h1><${ErrorBox} error=${modelsError} billingLink=${false} /></section>`;
  }

  const type = model?.type ?? 'chat';
  const lastAssistant = messages.length > 0 && messages[messages.length - 1]?.role === 'assistant' ? messages.length - 1 : -1;

  return html`
    <section class="page playground">
      <div class="page-head">
        <h1 tabindex="-1">Playground</h1>
        <p class="muted">Try the gateway's models. Requests here count against your plan like API calls.</p>
      </div>
      <div class="pg-grid">
        <aside class="pg-side">
          ${models
            ? html`<${ModelPicker} models=${models} value=${modelId} onChange=${(id: string) => setModelId(id)} />`
            : html`<p class="muted" role="status">Loading models…</p>`}
          <${Meter} meter=${meter} model=${model} error=${meterError} />
          ${type === 'chat' &&
          html`<fieldset class="card params">
            <legend>Parameters</legend>
            <div class="field">
              <label for="max-tokens">Output length (max tokens)</label>
              <input id="max-tokens" type="number" min="1" max="16384" step="1" value=${maxTokens} onInput=${num(setMaxTokens)} />
            </div>
            <div class="field">
              <label for="temperature">Temperature <output for="temperature">${temperature.toFixed(1)}</output></label>
              <input id="temperature" type="range" min="0" max="2" step="0.1" value=${temperature} onInput=${num(setTemperature)} />
            </div>
            <div class="field">
              <label for="top-p">Top-p <output for="top-p">${topP.toFixed(2)}</output></label>
              <input id="top-p" type="range" min="0" max="1" step="0.05" value=${topP} onInput=${num(setTopP)} />
            </div>
          </fieldset>`}
          ${meter && html`<${Rules} meter=${meter} />`}
        </aside>

        <div class="pg-main">
          ${type === 'chat' &&
          html`<div class="card conversation" role="log" aria-label="Conversation" aria-busy=${busy}>
            ${messages.length === 0
              ? html`<p class="muted empty">Send a message to start. Enter sends, Shift+Enter adds a new line.</p>`
              : messages.map(
                  (m, i) => html`<div key=${i} class=${`msg msg-${m.role}`}>
                    <div class="msg-role">${m.role === 'user' ? 'You' : (m.model ?? 'Assistant')}</div>
                    <div class="msg-text" data-testid=${i === lastAssistant ? 'answer' : undefined}>${m.content}</div>
                    ${(m.credits !== undefined || m.stopped) &&
                    html`<div class="msg-meta">
                      ${m.stopped ? 'Stopped. ' : ''}${m.credits !== undefined ? `${fmt(m.credits)} credits used` : ''}
                    </div>`}
                  </div>`,
                )}
            ${busy && lastAssistant >= 0 && messages[lastAssistant]?.content === '' && html`<p class="muted small">Waiting for the model…</p>`}
            <div ref=${logEnd}></div>
          </div>`}

          ${type === 'image' &&
          imageResult &&
          html`<div class="card result">
            <p class="muted small">${imageResult.size} · “${imageResult.prompt}”${imageResult.credits !== undefined ? ` · ${fmt(imageResult.credits)} credits used` : ''}</p>
            <div class="images">
              ${imageResult.images.length === 0
                ? html`<p class="muted">The model returned no image.</p>`
                : imageResult.images.map((src, i) => html`<img key=${i} src=${src} alt=${`Generated image ${i + 1}: ${imageResult.prompt}`} />`)}
            </div>
          </div>`}

          ${type === 'embedding' &&
          embedResult &&
          html`<div class="card result">
            <p><strong>${fmt(embedResult.dimensions)}</strong> dimensions${embedResult.credits !== undefined ? html` · <span class="muted">${fmt(embedResult.credits)} credits used</span>` : ''}</p>
            <p class="muted small">First ${embedResult.head.length} values:</p>
            <ol class="vector" start="0">${embedResult.head.map((v, i) => html`<li key=${i}><code>${v.toFixed(6)}</code></li>`)}</ol>
          </div>`}

          <${ErrorBox} error=${error} billingLink=${billingLifts(meter, error)} />

          <form class="card composer" onSubmit=${submit}>
            ${type === 'image' &&
            model &&
            html`<div class="field">
              <label for="image-size">Size</label>
              <select id="image-size" aria-describedby="image-cost" value=${size} onChange=${(e: Event) => setSize((e.currentTarget as HTMLSelectElement).value)}>
                ${sizesFor(model).map((s) => {
                  const cost = imageCost(model, s);
                  return html`<option key=${s} value=${s}>${s}${cost !== undefined ? ` · ${fmt(cost)} credits` : ''}</option>`;
                })}
              </select>
              <${ImageCost} cost=${imageCost(model, size)} left=${meter?.credits?.remaining} />
            </div>`}
            ${type === 'image' &&
            model?.image_to_image &&
            html`<div class="field">
              <label for="image-url">Source image URL</label>
              <input
                id="image-url"
                type="url"
                required
                placeholder="https://…/photo.png"
                value=${imageUrl}
                onInput=${(e: Event) => setImageUrl((e.currentTarget as HTMLInputElement).value)}
              />
            </div>`}
            <div class="field">
              <label for="prompt">${type === 'chat' ? 'Message' : type === 'image' ? 'Image prompt' : 'Text to embed'}</label>
              <textarea
                id="prompt"
                data-testid="prompt"
                ref=${promptRef}
                rows=${type === 'chat' ? 3 : 4}
                placeholder=${type === 'chat' ? 'Ask anything…' : type === 'image' ? 'Describe the image…' : 'Text to turn into a vector…'}
                value=${prompt}
                onInput=${(e: Event) => setPrompt((e.currentTarget as HTMLTextAreaElement).value)}
                onKeyDown=${onKeyDown}
              ></textarea>
            </div>
            <div class="composer-actions">
              ${busy &&
              html`<span class="busy" data-testid="busy" role="status"><span class="spinner" aria-hidden="true"></span> Working…</span>`}
              ${type === 'chat' &&
              messages.length > 0 &&
              !busy &&
              html`<button type="button" class="btn btn-quiet" onClick=${() => { setMessages([]); setError(null); }}>New chat</button>`}
              ${busy && html`<button type="button" class="btn btn-quiet" data-testid="stop" ref=${stopRef} onClick=${() => abort.current?.abort()}>Stop</button>`}
              <button type="submit" class="btn btn-primary" data-testid="send" disabled=${busy || !model}>
                ${type === 'image' ? 'Generate' : type === 'embedding' ? 'Embed' : 'Send'}
              </button>
            </div>
          </form>
        </div>
      </div>
    </section>
  `;
}
