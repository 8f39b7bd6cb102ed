// Search as you type on the registered models page. A pause in typing in "Name contains" asks
// the server for the page the form would load (same fields, first page) and swaps in its
// results; the address follows, so reload and back show the same. Without this script the
// form's Search button loads that page. Served from the binary; the page has no inline script.
(() => {
  'use strict';
  /** Typing pauses this long before a search starts. */
  const DEBOUNCE_MS = 250;
  const form = document.querySelector('form.search');
  const input = form && form.querySelector('input[name="q"]');
  const results = document.getElementById('results');
  const shown = document.getElementById('shown');
  if (!input || !results || !shown) return;
  let timer = 0;
  let asked = 0;

  async function search() {
    const fields = new URLSearchParams(new FormData(form));
    const address = `${form.getAttribute('action')}?${fields}`;
    const mine = ++asked;
    results.setAttribute('aria-busy', 'true');
    try {
      const response = await fetch(address, { headers: { Accept: 'text/html' }, credentials: 'same-origin' });
      // An error page is what the Search button would show: leave the results as they are.
      if (!response.ok) return;
      const html = await response.text();
      // An answer to an older keystroke, arriving late, is dropped.
      if (mine !== asked) return;
      const page = new DOMParser().parseFromString(html, 'text/html');
      const fresh = page.getElementById('results');
      if (!fresh) return;
      results.replaceChildren(...[...fresh.childNodes].map((node) => document.importNode(node, true)));
      // A live region: screen readers say how many models the search now shows.
      shown.textContent = page.getElementById('shown')?.textContent ?? '';
      history.replaceState(null, '', address);
    } catch {
      // Offline or refused: the Search button still works.
    } finally {
      if (mine === asked) results.removeAttribute('aria-busy');
    }
  }

  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(search, DEBOUNCE_MS);
  });
})();
