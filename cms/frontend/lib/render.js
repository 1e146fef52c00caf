'use strict';
// HTML of the home page. Every value from the backend is escaped.

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (ch) => ESCAPES[ch]);
}

function renderArticle(article) {
  return `    <li class="article" data-id="${escapeHtml(article.id)}">` +
    `<h2>${escapeHtml(article.title)}</h2>` +
    `<time>${escapeHtml(article.created_at)}</time></li>`;
}

function renderHome({ articles, error, node }) {
  let content;
  if (error) {
    content = `  <p class="notice error" role="alert">Articles are unavailable right now (${escapeHtml(error)}).</p>`;
  } else if (!articles.length) {
    content = '  <p class="notice">No articles yet.</p>';
  } else {
    content = `  <ul class="articles">\n${articles.map(renderArticle).join('\n')}\n  </ul>`;
  }
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>CMS — recent articles</title>
</head>
<body>
  <h1>Recent articles</h1>
${content}
  <footer>served by ${escapeHtml(node)}</footer>
</body>
</html>
`;
}

module.exports = { escapeHtml, renderHome };
