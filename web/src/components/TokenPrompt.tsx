/** Asked once when the server answers 401; the token is kept in localStorage. */
import { useEffect, useRef, useState } from 'react';

import { provideToken } from '../api';

export function TokenPrompt({ rejected }: { rejected: boolean }) {
  const [value, setValue] = useState('');
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <div className="overlay">
      <form
        className="dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby="token-title"
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim()) provideToken(value.trim());
        }}
      >
        <h2 id="token-title">This server needs a token</h2>
        <p>
          {rejected ? <strong className="error-text">The stored token was refused. </strong> : null}
          Paste an API token (create one with <code>runledger tokens create --scope read</code>). It is kept in this browser only.
        </p>
        <label htmlFor="token-input">Token</label>
        <input
          id="token-input"
          ref={input}
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={value}
          onChange={(e) => setValue(e.target.value)}
        />
        <div className="dialog-actions">
          <button type="submit" className="primary" disabled={!value.trim()}>
            Use token
          </button>
        </div>
      </form>
    </div>
  );
}
