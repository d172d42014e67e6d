// Ten probability bars, one per digit, in a .bars grid.

/** Fills `container` with ten bars; returns show(probs) (null empties them), which returns the top digit. */
export function probabilityBars(container) {
  container.innerHTML = Array.from({ length: 10 }, (_, d) => `<span>${d}</span><div><div class="bar" style="width:0"></div></div><span class="p">–</span>`).join('');
  const cells = [...container.children];
  return (probs) => {
    const top = probs ? probs.indexOf(Math.max(...probs)) : -1;
    for (let d = 0; d < 10; d++) {
      cells[d * 3 + 1].firstChild.style.width = probs ? `${(probs[d] * 100).toFixed(1)}%` : '0';
      cells[d * 3 + 2].textContent = probs ? probs[d].toFixed(3) : '–';
      for (const el of cells.slice(d * 3, d * 3 + 3)) el.classList.toggle('top', d === top);
    }
    return top;
  };
}
