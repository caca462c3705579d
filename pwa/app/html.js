// htm bound to Preact's h: every view writes markup as html`...` (no build step, no JSX).
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
