// Page: events (placeholder until built).
import { h } from '../core.js';

export default async function render(root) {
  root.append(h('h1', 'events'), h('p', { class: 'muted' }, 'This page is being built.'));
}
