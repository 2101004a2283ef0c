/**
 * The API client: openapi-fetch typed by the generated `paths` (schema.gen.ts), plus the
 * two things every call needs: the CSRF header on unsafe methods, and errors thrown as
 * `ApiError` with the API's message and hint (`{"error": {...}}` on every failure).
 */
import createClient, { type Middleware } from "openapi-fetch";

import type { paths } from "./schema.gen";

export interface ErrorDetail {
  type: string;
  message: string;
  where?: string | null;
  hint?: string | null;
  status: number;
}

export class ApiError extends Error {
  readonly type: string;
  readonly where: string | null;
  readonly hint: string | null;
  readonly status: number;

  constructor(detail: ErrorDetail) {
    super(detail.message);
    this.name = "ApiError";
    this.type = detail.type;
    this.where = detail.where ?? null;
    this.hint = detail.hint ?? null;
    this.status = detail.status;
  }
}

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export function readCookie(name: string): string | null {
  if (typeof document === "undefined") return null;
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (UNSAFE.has(request.method)) {
      const token = readCookie("corral_csrf");
      if (token) request.headers.set("X-CSRF-Token", token);
    }
    return request;
  },
};

/** Called on every 401, so the app can show the login screen. */
let onUnauthenticated: (() => void) | null = null;
export function setUnauthenticatedHandler(handler: (() => void) | null): void {
  onUnauthenticated = handler;
}

export const client = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
client.use(csrf);

/** Turn a failed response's body into an ApiError (or a plain one for non-API bodies). */
export function toApiError(error: unknown, response: Response): ApiError {
  const body = error as { error?: ErrorDetail } | undefined;
  if (response.status === 401 && onUnauthenticated && !response.url.endsWith("/auth/login")) {
    onUnauthenticated();
  }
  if (body && typeof body === "object" && body.error && typeof body.error.message === "string") {
    return new ApiError(body.error);
  }
  return new ApiError({
    type: "HTTPError",
    message: `the server answered ${response.status} ${response.statusText || ""}`.trim(),
    hint:
      response.status >= 500
        ? "the Corral server failed; its log has the details"
        : "check that this page and the Corral server are the same version",
    status: response.status,
  });
}

interface Result<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The data of a successful call, or throw its ApiError. */
export async function unwrap<T>(call: Promise<Result<T>>): Promise<T> {
  let result: Result<T>;
  try {
    result = await call;
  } catch (error) {
    throw new ApiError({
      type: "NetworkError",
      message: "could not reach the Corral server",
      hint: "check that 'corral serve' is running and that you are online",
      status: 0,
    });
  }
  if (result.error !== undefined || !result.response.ok) throw toApiError(result.error, result.response);
  return result.data as T;
}

/** Like unwrap, and also the resource's ETag (needed for PUT/DELETE with If-Match). */
export async function unwrapWithEtag<T>(call: Promise<Result<T>>): Promise<{ data: T; etag: string | null }> {
  let etag: string | null = null;
  const data = await unwrap(
    call.then((result) => {
      etag = result.response.headers.get("ETag");
      return result;
    }),
  );
  return { data, etag };
}

export const ifMatch = (etag: string | null | undefined): Record<string, string> =>
  etag ? { "If-Match": etag } : {};
