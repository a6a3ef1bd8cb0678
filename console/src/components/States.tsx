import type { ReactNode } from "react";
import type { ApiError } from "../api/http";
import type { Resource } from "./resource";

export function Loading({ what }: { what: string }) {
  return (
    <p className="state loading" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="state empty">{children}</p>;
}

export function ErrorPanel({ error, what, retry }: { error: ApiError; what: string; retry?: () => void }) {
  return (
    <div className="state error" role="alert">
      <p>
        <strong>Could not load {what}.</strong> {error.message}
      </p>
      {error.problems.length > 0 && <ProblemList problems={error.problems} />}
      {retry && (
        <button type="button" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function ProblemList({ problems }: { problems: { field: string; msg: string }[] }) {
  return (
    <ul className="problems">
      {problems.map((p, i) => (
        <li key={i}>
          {p.field && <code>{p.field}</code>} {p.msg}
        </li>
      ))}
    </ul>
  );
}

/** Refusal of a write, shown beside its form. */
export function FormError({ error }: { error: ApiError | null }) {
  if (!error) return null;
  return (
    <div className="state error" role="alert">
      <p>{error.problems.length ? "The API refused this:" : error.message}</p>
      {error.problems.length > 0 && <ProblemList problems={error.problems} />}
    </div>
  );
}

/** Loading, error and empty states around a resource; `children` renders its data. */
export function Show<T>({
  r,
  what,
  isEmpty,
  empty,
  children,
}: {
  r: Resource<T>;
  what: string;
  isEmpty?: (d: T) => boolean;
  empty?: ReactNode;
  children: (d: T) => ReactNode;
}) {
  if (r.state === "loading") return <Loading what={what} />;
  if (r.state === "error") return <ErrorPanel error={r.error} what={what} retry={r.reload} />;
  if (isEmpty?.(r.data)) return <Empty>{empty ?? `No ${what}.`}</Empty>;
  return <>{children(r.data)}</>;
}
