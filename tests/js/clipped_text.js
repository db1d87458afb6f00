() => {
  const out = new Set();
  const skip = '[data-testid=stTable], [data-testid=stDataFrame], [data-testid=stCode], pre, svg, canvas, ' +
               '[data-testid=stVegaLiteChart], [data-testid=stFileUploaderDropzoneInstructions], details:not([open]) > :not(summary)';
  for (const e of document.querySelectorAll('[data-testid=stMain] *')) {
    if (e.closest(skip)) continue;
    if (e.tagName === 'INPUT' && e.getAttribute('role') !== 'combobox') continue;
    const text = (e.tagName === 'INPUT' ? e.value : e.innerText || '').trim();
    if (!text || text.length > 80 || e.children.length > 4) continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    let clipped = (e.tagName === 'INPUT' || getComputedStyle(e).textOverflow === 'ellipsis')
                  && e.scrollWidth > e.clientWidth + 1;
    for (let a = e.parentElement; a && !clipped && a.dataset.testid !== 'stMain'; a = a.parentElement) {
      if (getComputedStyle(a).overflowX === 'visible') continue;
      const ar = a.getBoundingClientRect();
      if (r.right > ar.right + 2 || r.left < ar.left - 2) clipped = true;
    }
    if (clipped) out.add(text.slice(0, 60));
  }
  return [...out];
}
