// Page: tracked (placeholder until built).
import { h } from '../core.js';

export default async function render(root) {
  root.append(h('h1', 'tracked'), h('p', { class: 'muted' }, 'This page is being built.'));
}
