/* OneMap web map client (一张图): the layer tree, legends, popups, search, region jump, imagery
 * epochs, date range, language switch and the inspector's area query, on the Leaflet map folium
 * built. Everything shown that comes from data is put in the page as text (textContent), never
 * as HTML, so a hostile attribute value is displayed, not run. */
(function () {
  'use strict';

  var OneMap = window.OneMap = {};
  var LANG_KEY = 'onemap.lang';
  var PANES = {imagery: 250, base: 380, business: 420, points: 460, query: 500};

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') { node.textContent = attrs[k]; }
      else if (k === 'class') { node.className = attrs[k]; }
      else if (k.indexOf('on') === 0) { node.addEventListener(k.slice(2), attrs[k]); }
      else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }

  function getJSON(url, options) {
    return fetch(url, Object.assign({credentials: 'same-origin'}, options || {})).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.description || body.error || r.statusText); }
        return body;
      });
    });
  }

  function formatNumber(value, digits) {
    return Number(value).toLocaleString('zh-CN', {maximumFractionDigits: digits, minimumFractionDigits: digits});
  }

  OneMap.start = function (map, cfg, drawnItems) {
    var state = {
      lang: (function () {
        var fromUrl = new URLSearchParams(window.location.search).get('lang');
        var stored = window.localStorage ? window.localStorage.getItem(LANG_KEY) : null;
        return ['zh', 'en'].indexOf(fromUrl) >= 0 ? fromUrl : (stored === 'en' ? 'en' : 'zh');
      })(),
      shown: {}, layers: {}, epoch: '', dateFrom: '', dateTo: '', regions: [], query: null
    };
    var ui = {};
    OneMap.map = map;
    OneMap.state = state;

    function t(key) { return cfg.messages[state.lang][key] || key; }
    function title(obj) { return state.lang === 'zh' ? obj.zh : obj.en; }
    var allLayers = [];
    cfg.groups.forEach(function (g) { g.layers.forEach(function (l) { allLayers.push(l); }); });
    allLayers.forEach(function (l) { state.shown[l.name] = l.shown; });

    Object.keys(PANES).forEach(function (name) {
      map.createPane('om-' + name).style.zIndex = PANES[name];
    });
    map.attributionControl.setPrefix(false);

    /* ---------- styles ---------- */
    function fillOf(layer, props) {
      var s = layer.style, code = s.category_field ? props[s.category_field] : null;
      if (code !== null && code !== undefined) {
        code = String(code);
        if (s.categories[code]) { return s.categories[code]; }
        if (s.categories[code.slice(0, 2)]) { return s.categories[code.slice(0, 2)]; }
      }
      return s.fill;
    }

    function inDateRange(layer, props) {
      if (!layer.time_field || (!state.dateFrom && !state.dateTo)) { return true; }
      var v = props[layer.time_field];
      if (v === undefined || v === null) { return true; }   // not in this tile's attributes
      v = String(v).slice(0, 10);
      return (!state.dateFrom || v >= state.dateFrom) && (!state.dateTo || v <= state.dateTo);
    }

    function pathStyle(layer, props) {
      var s = layer.style, fill = fillOf(layer, props);
      return {
        color: s.stroke, weight: s.stroke_width, opacity: 1,
        dashArray: s.stroke_dash ? s.stroke_dash.join(' ') : null,
        fill: !!fill, fillColor: fill || '#000', fillOpacity: fill ? s.fill_opacity : 0,
        radius: s.radius
      };
    }

    function paneOf(layer) {
      if (layer.geometry === 'POINT') { return 'om-points'; }
      return layer.group === 'base' || layer.group === 'imagery' ? 'om-base' : 'om-business';
    }

    /* ---------- layers ---------- */
    function makeTiles(layer) {
      var styles = {};
      styles[layer.name] = function (props) {
        return inDateRange(layer, props) ? pathStyle(layer, props) : [];
      };
      return L.vectorGrid.protobuf(layer.url, {
        vectorTileLayerStyles: styles, minZoom: layer.style.min_zoom, maxZoom: 20, maxNativeZoom: 20,
        pane: paneOf(layer), interactive: false, rendererFactory: L.canvas.tile,
        fetchOptions: {credentials: 'same-origin'}
      });
    }

    function geojsonUrl(layer) {
      var params = new URLSearchParams();
      if (layer.time_field && state.dateFrom) { params.set('from', state.dateFrom); }
      if (layer.time_field && state.dateTo) { params.set('to', state.dateTo); }
      var q = params.toString();
      return layer.url + (q ? '?' + q : '');
    }

    function makeGeoJSON(layer) {
      var group = L.geoJSON(null, {
        pane: paneOf(layer), interactive: false,
        style: function (f) { return pathStyle(layer, f.properties); },
        pointToLayer: function (f, latlng) {
          return L.circleMarker(latlng, Object.assign(pathStyle(layer, f.properties),
            {pane: paneOf(layer), interactive: false, weight: 1.5}));
        }
      });
      group.reload = function () {
        var url = geojsonUrl(layer);
        group.loadedUrl = url;
        setStatus(layer.name, 'loading');
        getJSON(url).then(function (data) {
          if (group.loadedUrl !== url) { return; }
          group.clearLayers();
          group.addData(data);
          group.featureCount = data.features.length;
          setStatus(layer.name, 'ok');
        }).catch(function () { setStatus(layer.name, 'failed'); });
      };
      return group;
    }

    function leafletLayer(layer) {
      if (!state.layers[layer.name]) {
        state.layers[layer.name] = layer.kind === 'tiles' ? makeTiles(layer) : makeGeoJSON(layer);
      }
      return state.layers[layer.name];
    }

    function setShown(layer, on) {
      state.shown[layer.name] = on;
      var ll = leafletLayer(layer);
      if (on) {
        ll.addTo(map);
        if (ll.reload && ll.loadedUrl !== geojsonUrl(layer)) { ll.reload(); }
      } else {
        map.removeLayer(ll);
      }
    }

    function refreshDated() {
      allLayers.forEach(function (layer) {
        if (!layer.time_field || !state.layers[layer.name]) { return; }
        var ll = state.layers[layer.name];
        if (ll.reload) { if (state.shown[layer.name]) { ll.reload(); } else { ll.loadedUrl = null; } }
        // Leaflet's redraw ignores minZoom: below it there are no tiles to restyle anyway
        else if (map.hasLayer(ll) && map.getZoom() >= layer.style.min_zoom) { ll.redraw(); }
      });
    }

    var imageryLayer = null;
    function setEpoch(name) {
      state.epoch = name;
      if (imageryLayer) { map.removeLayer(imageryLayer); imageryLayer = null; }
      var epoch = cfg.imagery.filter(function (e) { return e.layer === name; })[0];
      if (!epoch) { return; }
      var b = epoch.bounds;
      imageryLayer = L.tileLayer(epoch.url, {
        pane: 'om-imagery', bounds: L.latLngBounds([b[1], b[0]], [b[3], b[2]]), maxZoom: 20,
        maxNativeZoom: epoch.max_zoom, attribution: epoch.name
      }).addTo(map);
    }

    /* ---------- layer tree and legends ---------- */
    var statusNodes = {};
    function setStatus(name, status) {
      var node = statusNodes[name];
      if (!node) { return; }
      node.className = 'om-status om-status-' + status;
      node.textContent = status === 'loading' ? t('loading') : status === 'failed' ? t('load_failed') : '';
    }

    function swatch(layer, row) {
      var s = layer.style;
      var box = el('span', {class: 'om-swatch' + (layer.geometry === 'POINT' ? ' om-swatch-point' : '')});
      box.style.background = row.fill || 'transparent';
      box.style.opacity = row.fill ? Math.max(s.fill_opacity, 0.5) : 1;
      box.style.borderColor = row.stroke || s.stroke;
      if (s.stroke_dash) { box.style.borderStyle = 'dashed'; }
      return box;
    }

    function legendOf(layer) {
      var rows = layer.legend.map(function (row) {
        return el('li', {}, [swatch(layer, row), el('span', {text: row.code && layer.legend.length > 1 ?
          (/^\d+$/.test(row.code) ? row.code + ' ' : '') + title(row) : title(row)})]);
      });
      return el('ul', {class: 'om-legend'}, rows);
    }

    function layerRow(layer) {
      var id = 'om-layer-' + layer.name;
      var box = el('input', {type: 'checkbox', id: id, class: 'form-check-input', 'data-layer': layer.name,
        onchange: function (e) { setShown(layer, e.target.checked); legend.hidden = !e.target.checked; }});
      box.checked = !!state.shown[layer.name];
      var status = el('span', {class: 'om-status'});
      statusNodes[layer.name] = status;
      var note = layer.style.min_zoom > 0 ?
        el('span', {class: 'om-minzoom', text: t('zoom_in_to_see').replace('{z}', layer.style.min_zoom)}) : null;
      var legend = legendOf(layer);
      legend.hidden = !box.checked;
      return el('div', {class: 'om-layer'}, [
        el('div', {class: 'form-check'}, [box, el('label', {class: 'form-check-label', for: id,
          text: title(layer)}), status]),
        note, legend
      ]);
    }

    function imageryControl() {
      var select = el('select', {class: 'form-select form-select-sm', id: 'om-epoch',
        onchange: function (e) { setEpoch(e.target.value); }},
        [el('option', {value: '', text: t('imagery_none')})].concat(cfg.imagery.map(function (e) {
          return el('option', {value: e.layer, text: e.name + ' (' + e.acquired_on + ')'});
        })));
      select.value = state.epoch;
      return el('div', {class: 'om-imagery'}, [el('label', {for: 'om-epoch', text: t('imagery_epoch')}), select]);
    }

    function layerTree() {
      var tree = el('div', {class: 'om-tree'});
      cfg.groups.forEach(function (group) {
        var body = el('div', {class: 'om-group-body'});
        if (group.id === 'imagery') { body.appendChild(imageryControl()); }
        group.layers.forEach(function (layer) { body.appendChild(layerRow(layer)); });
        var head = el('button', {type: 'button', class: 'om-group-head', 'aria-expanded': 'true',
          text: t('group_' + group.id), onclick: function () {
            body.hidden = !body.hidden; head.setAttribute('aria-expanded', String(!body.hidden));
          }});
        tree.appendChild(el('section', {class: 'om-group', 'data-group': group.id}, [head, body]));
      });
      return tree;
    }

    /* ---------- popups (identify) ---------- */
    function fieldValue(f) {
      if (f.value === null || f.value === undefined || f.value === '') { return '—'; }
      var label = state.lang === 'zh' ? f.label_zh : f.label_en;
      if (label) {   // a code: national codes (0103, 220102) with their name, word codes by their name
        return /^\d+$/.test(String(f.value)) ? f.value + ' ' + label : label;
      }
      var v = typeof f.value === 'number' ? formatNumber(f.value, Number.isInteger(f.value) ? 0 : 2) :
        typeof f.value === 'boolean' ? (f.value ? '✓' : '✗') :
        Array.isArray(f.value) ? f.value.join('、') :
        typeof f.value === 'object' ? JSON.stringify(f.value) : String(f.value);
      if (f.unit === 'm2') { v += ' m²'; } else if (f.unit) { v += ' ' + f.unit; }
      return v;
    }

    function popupContent(features) {
      if (!features.length) { return el('div', {class: 'om-popup', text: t('no_features')}); }
      return el('div', {class: 'om-popup'}, features.map(function (f) {
        var rows = f.fields.map(function (field) {
          return el('tr', {}, [el('th', {text: title(field)}), el('td', {text: fieldValue(field)})]);
        });
        return el('section', {class: 'om-feature', 'data-layer': f.layer}, [
          el('h6', {text: (state.lang === 'zh' ? f.layer_zh : f.layer_en) + (f.label ? ' · ' + f.label : '')}),
          el('table', {class: 'table table-sm om-fields'}, [el('tbody', {}, rows)])
        ]);
      }));
    }

    function identify(e) {
      if (state.drawing) { return; }
      var names = [];
      allLayers.slice().reverse().forEach(function (l) {   // top of the tree is drawn last: ask it first
        if (state.shown[l.name] && map.getZoom() >= l.style.min_zoom) { names.push(l.name); }
      });
      names.sort(function (a, b) { return rank(a) - rank(b); });
      if (!names.length) { return; }
      var params = new URLSearchParams({lon: e.latlng.lng.toFixed(7), lat: e.latlng.lat.toFixed(7),
        z: map.getZoom(), layers: names.join(',')});
      var popup = L.popup({maxWidth: 420, maxHeight: 420, className: 'om-leaflet-popup'})
        .setLatLng(e.latlng).setContent(el('div', {text: t('loading')})).openOn(map);
      getJSON(cfg.api.identify + '?' + params).then(function (body) {
        popup.setContent(popupContent(body.features));
      }).catch(function (err) { popup.setContent(el('div', {text: t('load_failed') + ': ' + err.message})); });
    }
    function rank(name) {   // points first, then business polygons, then base layers
      var l = allLayers.filter(function (x) { return x.name === name; })[0];
      return l.geometry === 'POINT' ? 0 : (l.group === 'base' ? 2 : 1);
    }
    map.on('click', identify);

    /* ---------- search and regions ---------- */
    function fitBbox(b, maxZoom) {
      map.fitBounds(L.latLngBounds([b[1], b[0]], [b[3], b[2]]), {maxZoom: maxZoom || 16, padding: [20, 20]});
    }

    function runSearch(q, list) {
      list.textContent = '';
      if (!q.trim()) { return; }
      list.appendChild(el('li', {class: 'om-muted', text: t('loading')}));
      getJSON(cfg.api.search + '?' + new URLSearchParams({q: q})).then(function (body) {
        list.textContent = '';
        if (!body.results.length) { list.appendChild(el('li', {class: 'om-muted', text: t('search_none')})); }
        body.results.forEach(function (r) {
          list.appendChild(el('li', {}, [el('button', {type: 'button', class: 'om-result',
            onclick: function () {
              var layer = allLayers.filter(function (l) { return l.name === r.layer; })[0];
              if (layer && !state.shown[layer.name]) {
                setShown(layer, true);
                var box = document.getElementById('om-layer-' + layer.name);
                if (box) { box.checked = true; box.dispatchEvent(new Event('change')); }
              }
              fitBbox(r.bbox, 16);
              list.textContent = '';
            }}, [el('strong', {text: r.label || String(r.id)}),
                 el('span', {text: ' ' + (state.lang === 'zh' ? r.layer_zh : r.layer_en) + ' · ' +
                   (state.lang === 'zh' ? r.matched_zh : r.matched_en)})])]));
        });
      }).catch(function (err) { list.textContent = ''; list.appendChild(el('li', {text: err.message})); });
    }

    function regionControl() {
      var cities = el('select', {class: 'form-select form-select-sm', id: 'om-city', 'aria-label': t('region_city')});
      var counties = el('select', {class: 'form-select form-select-sm', id: 'om-county',
        'aria-label': t('region_county')});
      function fill(select, parent, level, first) {
        select.textContent = '';
        select.appendChild(el('option', {value: '', text: first}));
        state.regions.filter(function (r) { return r.level === level && r.parent_code === parent; })
          .forEach(function (r) { select.appendChild(el('option', {value: r.code, text: r.name})); });
      }
      function go(code) {
        var r = state.regions.filter(function (x) { return x.code === code; })[0];
        if (r) { fitBbox(r.bbox, 13); }
      }
      var province = state.regions.filter(function (r) { return r.level === 'province'; })[0];
      fill(cities, province ? province.code : null, 'city', province ? province.name : t('region_province'));
      fill(counties, '__none__', 'county', t('region_county'));
      cities.addEventListener('change', function () {
        fill(counties, cities.value || '__none__', 'county', t('region_county'));
        go(cities.value || (province && province.code));
      });
      counties.addEventListener('change', function () { go(counties.value || cities.value); });
      return el('div', {class: 'om-regions'}, [el('span', {class: 'om-label', text: t('jump_to')}), cities, counties]);
    }

    /* ---------- date range ---------- */
    function dateControl() {
      function input(id, key) {
        var node = el('input', {type: 'date', id: id, class: 'form-control form-control-sm',
          'aria-label': t(key), onchange: function (e) {
            state[key === 'date_from' ? 'dateFrom' : 'dateTo'] = e.target.value;
            refreshDated();
          }});
        node.value = state[key === 'date_from' ? 'dateFrom' : 'dateTo'];
        return node;
      }
      return el('div', {class: 'om-dates'}, [el('span', {class: 'om-label', text: t('date_range')}),
        input('om-date-from', 'date_from'), el('span', {text: '–'}), input('om-date-to', 'date_to'),
        el('button', {type: 'button', class: 'btn btn-sm btn-outline-light', text: t('date_clear'),
          onclick: function () { state.dateFrom = state.dateTo = ''; render(); refreshDated(); }})]);
    }

    /* ---------- the inspector's area query ---------- */
    var queryLayer = L.featureGroup([], {pane: 'om-query'}).addTo(map);

    function circleToPolygon(circle) {
      var c = circle.getLatLng(), r = circle.getRadius(), pts = [], R = 6378137;
      for (var i = 0; i < 64; i++) {
        var a = 2 * Math.PI * i / 64;
        var dLat = r * Math.cos(a) / R, dLon = r * Math.sin(a) / (R * Math.cos(c.lat * Math.PI / 180));
        pts.push([c.lng + dLon * 180 / Math.PI, c.lat + dLat * 180 / Math.PI]);
      }
      pts.push(pts[0]);
      return {type: 'Polygon', coordinates: [pts]};
    }

    function csrfHeaders() {
      var h = {'Content-Type': 'application/json'};
      if (cfg.csrf_token) { h['X-CSRFToken'] = cfg.csrf_token; }
      return h;
    }

    function runQuery(geometry, file) {
      state.query = {geometry: geometry, file: file || null, result: null, error: null, running: true};
      showTab('results');
      render();
      queryRequest().then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error(body.error || body.description || r.statusText); }
          return body;
        });
      }).then(function (result) {
        state.query.result = result;
        if (file) {   // a zipped Shapefile: the server read it and answers with the outline it queried
          state.query.geometry = result.query_geometry;
          map.fitBounds(L.geoJSON(result.query_geometry).getBounds());
        }
      })
        .catch(function (err) { state.query.error = err.message; })
        .then(function () { state.query.running = false; drawQueryResult(); render(); });
    }
    OneMap.query = runQuery;

    function drawQueryResult() {
      queryLayer.clearLayers();
      var q = state.query;
      if (!q) { return; }
      if (q.geometry) {
        L.geoJSON(q.geometry, {pane: 'om-query', interactive: false,
          style: {color: '#0050b3', weight: 2.5, dashArray: '6 4', fill: false}}).addTo(queryLayer);
      }
      if (!q.result) { return; }
      q.result.layers.forEach(function (lr) {
        var layer = allLayers.filter(function (l) { return l.name === lr.layer; })[0];
        lr.features.forEach(function (f) {
          // its style's fill; a categorised layer a neutral one; an outline-only layer (divisions) none
          var fill = layer && (layer.style.fill || (layer.style.category_field ? '#69c0ff' : null));
          var shape = L.geoJSON(f.geometry, {pane: 'om-query', pointToLayer: function (g, latlng) {
            return L.circleMarker(latlng, {pane: 'om-query', radius: 7});
          }, style: function () {
            return {color: '#0050b3', weight: 1.5, fill: !!fill, fillColor: fill || '#69c0ff', fillOpacity: 0.35};
          }}).addTo(queryLayer);
          f._shape = shape;
          shape.on('mouseover', function () { highlight(f, true); });
          shape.on('mouseout', function () { highlight(f, false); });
          shape.on('click', function (e) {
            L.DomEvent.stopPropagation(e);
            if (f._row) { f._row.scrollIntoView({block: 'nearest'}); }
            highlight(f, true);
          });
        });
      });
    }

    function highlight(f, on) {
      if (f._shape) { f._shape.setStyle({weight: on ? 4 : 1.5, color: on ? '#ff4d4f' : '#0050b3'}); }
      if (f._row) { f._row.classList.toggle('om-active', on); }
    }

    function areaCells(x, point) {
      var m2 = x.area_m2 !== undefined ? x.area_m2 : x.total_m2;
      var ha = x.area_ha !== undefined ? x.area_ha : x.total_ha;
      var mu = x.area_mu !== undefined ? x.area_mu : x.total_mu;
      if (point) { return [el('td', {class: 'om-num', text: '—'}), el('td'), el('td')]; }
      return [el('td', {class: 'om-num', 'data-m2': String(m2), text: formatNumber(m2, 0)}),
              el('td', {class: 'om-num', text: formatNumber(ha, 4)}),
              el('td', {class: 'om-num', text: formatNumber(mu, 2)})];
    }

    function areaHead(first) {
      return el('thead', {}, [el('tr', {}, [el('th', {text: first}), el('th', {text: t('area_m2')}),
        el('th', {text: t('area_ha')}), el('th', {text: t('area_mu')})])]);
    }

    function queryRequest(format) {   // the drawn or GeoJSON outline as JSON, a zipped Shapefile as a file
      var q = state.query, suffix = format ? '?f=' + format : '';
      if (q.file) {
        var form = new FormData();
        form.append('file', q.file);
        return fetch(cfg.api.upload + suffix, {method: 'POST', credentials: 'same-origin', body: form,
          headers: cfg.csrf_token ? {'X-CSRFToken': cfg.csrf_token} : {}});
      }
      return fetch(cfg.api.query + suffix, {method: 'POST', credentials: 'same-origin', headers: csrfHeaders(),
        body: JSON.stringify({geometry: q.geometry})});
    }

    function downloadQuery(format) {
      queryRequest(format).then(function (r) { return r.blob(); })
        .then(function (blob) {
          var a = el('a', {href: URL.createObjectURL(blob), download: 'query.' + format});
          document.body.appendChild(a); a.click(); a.remove();
        });
    }

    function printQuery() {
      var form = el('form', {method: 'POST', action: cfg.api.print, target: '_blank'}, [
        el('input', {type: 'hidden', name: 'geometry', value: JSON.stringify(state.query.geometry)})]);
      if (cfg.csrf_token) { form.appendChild(el('input', {type: 'hidden', name: 'csrf_token', value: cfg.csrf_token})); }
      document.body.appendChild(form); form.submit(); form.remove();
    }

    function uploadOutline(file) {
      if (/\.zip$/i.test(file.name)) { runQuery(null, file); return; }   // a zipped Shapefile: the server reads it
      file.text().then(function (txt) {
        var gj = JSON.parse(txt), polys = [];
        var feats = gj.type === 'FeatureCollection' ? gj.features : [gj.type === 'Feature' ? gj : {geometry: gj}];
        feats.forEach(function (f) {
          var g = f.geometry;
          if (g && g.type === 'Polygon') { polys.push(g.coordinates); }
          if (g && g.type === 'MultiPolygon') { polys = polys.concat(g.coordinates); }
        });
        if (!polys.length) { throw new Error('no polygon'); }
        var geometry = polys.length === 1 ? {type: 'Polygon', coordinates: polys[0]} :
          {type: 'MultiPolygon', coordinates: polys};
        map.fitBounds(L.geoJSON(geometry).getBounds());
        runQuery(geometry);
      }).catch(function (err) {
        state.query = {geometry: null, error: err.message, running: false};
        render();
      });
    }

    function queryPanel() {
      var panel = el('div', {class: 'om-query'}, [el('p', {class: 'om-muted', text: t('query_hint')}),
        el('label', {class: 'btn btn-sm btn-outline-primary om-upload'}, [
          el('i', {class: 'fa-solid fa-upload'}), el('span', {text: ' ' + t('query_upload')}),
          el('input', {type: 'file', accept: '.geojson,.json,.zip', hidden: 'hidden', id: 'om-upload',
            onchange: function (e) { if (e.target.files[0]) { uploadOutline(e.target.files[0]); } }})])]);
      var q = state.query;
      if (!q) { return panel; }
      if (q.running) { panel.appendChild(el('p', {text: t('query_running')})); return panel; }
      if (q.error) { panel.appendChild(el('p', {class: 'om-error', text: t('query_failed') + ': ' + q.error})); return panel; }
      var r = q.result;
      panel.appendChild(el('div', {class: 'om-query-actions'}, [
        el('span', {class: 'om-query-area', text: t('query_area') + ' ' + formatNumber(r.query_area_m2, 0) + ' m²'}),
        el('button', {type: 'button', class: 'btn btn-sm btn-outline-secondary', text: 'GeoJSON',
          onclick: function () { downloadQuery('geojson'); }}),
        el('button', {type: 'button', class: 'btn btn-sm btn-outline-secondary', text: 'CSV',
          onclick: function () { downloadQuery('csv'); }}),
        q.geometry ? el('button', {type: 'button', class: 'btn btn-sm btn-outline-secondary', text: t('query_print'),
          onclick: printQuery}) : null,
        el('button', {type: 'button', class: 'btn btn-sm btn-outline-danger', text: t('query_clear'),
          onclick: function () { state.query = null; queryLayer.clearLayers(); render(); }})]));
      if (r.land_use_by_class && r.land_use_by_class.length) {
        panel.appendChild(el('section', {class: 'om-query-layer', 'data-layer': 'land_use_by_class'}, [
          el('h6', {text: t('query_by_class')}),
          el('table', {class: 'table table-sm om-area-table'}, [areaHead(t('class_name')), el('tbody', {},
            r.land_use_by_class.map(function (c) {
              return el('tr', {}, [el('td', {text: c.class_code + ' ' + c.class_name})].concat(areaCells(c)));
            }))])]));
      }
      var hits = r.layers.filter(function (lr) { return lr.features.length; });
      hits.sort(function (a, b) { return (a.layer === 'admin_division') - (b.layer === 'admin_division'); });
      if (!hits.length) { panel.appendChild(el('p', {text: t('query_nothing')})); }
      hits.forEach(function (lr) {
        var point = lr.geometry_type === 'POINT';
        var rows = lr.features.map(function (f) {
          var row = el('tr', {class: 'om-query-row', onmouseenter: function () { highlight(f, true); },
            onmouseleave: function () { highlight(f, false); },
            onclick: function () { if (f._shape) { map.fitBounds(f._shape.getBounds(), {maxZoom: 17}); } }},
            [el('td', {text: f.label || String(f.id)})].concat(areaCells(f, point)));
          f._row = row;
          return row;
        });
        rows.push(el('tr', {class: 'om-total'}, [el('td', {text: t('query_total')})].concat(areaCells(lr, point))));
        panel.appendChild(el('section', {class: 'om-query-layer', 'data-layer': lr.layer}, [
          el('h6', {text: (state.lang === 'zh' ? lr.title_zh : lr.title_en) + ' (' + lr.features.length + ' ' +
            t('features') + ')'}),
          el('table', {class: 'table table-sm om-area-table'}, [areaHead(''), el('tbody', {}, rows)])]));
      });
      return panel;
    }

    if (drawnItems) {
      map.on('draw:drawstart', function () { state.drawing = true; drawnItems.clearLayers(); });
      map.on('draw:drawstop', function () { setTimeout(function () { state.drawing = false; }, 0); });
      map.on('draw:created', function (e) {
        var geometry = e.layerType === 'circle' ? circleToPolygon(e.layer) : e.layer.toGeoJSON().geometry;
        setTimeout(function () { drawnItems.clearLayers(); }, 0);
        runQuery(geometry);
      });
    }

    function drawLocal() {
      if (!L.drawLocal) { return; }
      var d = L.drawLocal.draw;
      d.toolbar.buttons.polygon = t('draw_polygon');
      d.toolbar.buttons.rectangle = t('draw_rectangle');
      d.toolbar.buttons.circle = t('draw_circle');
      d.toolbar.actions.title = d.toolbar.actions.text = t('draw_cancel');
      d.toolbar.finish.title = d.toolbar.finish.text = t('draw_finish');
      d.toolbar.undo.title = d.toolbar.undo.text = t('draw_undo');
      d.handlers.polygon.tooltip = {start: t('draw_start'), cont: t('draw_continue'), end: t('draw_end')};
      d.handlers.rectangle.tooltip.start = d.handlers.circle.tooltip.start = t('draw_drag');
      d.handlers.simpleshape.tooltip.end = t('draw_finish');
      document.querySelectorAll('.leaflet-draw-draw-polygon').forEach(function (a) { a.title = t('draw_polygon'); });
      document.querySelectorAll('.leaflet-draw-draw-rectangle').forEach(function (a) { a.title = t('draw_rectangle'); });
      document.querySelectorAll('.leaflet-draw-draw-circle').forEach(function (a) { a.title = t('draw_circle'); });
    }

    /* ---------- the page around the map ---------- */
    function roleTitle(both) {   // "监管人员 Supervisor"
      var i = both.indexOf(' ');
      return i < 0 ? both : (state.lang === 'zh' ? both.slice(0, i) : both.slice(i + 1));
    }
    function userControl() {
      if (!cfg.user) {
        return el('a', {class: 'btn btn-sm btn-outline-light om-login', href: cfg.login || '/login', text: t('login')});
      }
      return el('form', {class: 'om-user', method: 'POST', action: cfg.logout}, [
        el('i', {class: 'fa-solid fa-user'}),
        el('span', {text: ' ' + cfg.user.display_name + ' · ' + roleTitle(cfg.user.role_title) + ' '}),
        el('input', {type: 'hidden', name: 'csrf_token', value: cfg.csrf_token}),
        el('button', {type: 'submit', class: 'btn btn-sm btn-outline-light', text: t('logout')})]);
    }

    var tab = 'layers';
    function showTab(name) { tab = name; }

    function render() {
      var root = document.getElementById('onemap-ui');
      document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
      document.title = t(cfg.public ? 'title_public' : 'title');
      root.textContent = '';
      var search = el('input', {type: 'search', class: 'form-control form-control-sm', id: 'om-search',
        placeholder: t('search_placeholder'), 'aria-label': t('search')});
      var results = el('ul', {class: 'om-search-results', id: 'om-search-results'});
      var searchForm = el('form', {class: 'om-search', role: 'search', onsubmit: function (e) {
        e.preventDefault(); runSearch(search.value, results);
      }}, [search, el('button', {type: 'submit', class: 'btn btn-sm btn-primary', 'aria-label': t('search')},
        [el('i', {class: 'fa-solid fa-magnifying-glass'})]), results]);
      var top = el('header', {class: 'om-top'}, [
        el('button', {type: 'button', class: 'om-toggle', title: t('panel_toggle'), 'aria-label': t('panel_toggle'),
          onclick: function () { document.body.classList.toggle('om-panel-hidden'); map.invalidateSize(); }},
          [el('i', {class: 'fa-solid fa-bars'})]),
        el('div', {class: 'om-brand'}, [el('span', {class: 'om-emblem'}, [el('i', {class: 'fa-solid fa-earth-asia'})]),
          el('h1', {text: t(cfg.public ? 'title_public' : 'title')}),
          el('span', {class: 'om-badge', text: t(cfg.public ? 'audience_public' : 'audience_staff')})]),
        searchForm, regionControl(), dateControl(),
        el('button', {type: 'button', class: 'btn btn-sm btn-light om-lang', id: 'om-lang', text: t('language'),
          onclick: function () {
            state.lang = state.lang === 'zh' ? 'en' : 'zh';
            if (window.localStorage) { window.localStorage.setItem(LANG_KEY, state.lang); }
            render();
          }}), userControl()]);
      var tabs = [el('button', {type: 'button', class: 'om-tab' + (tab === 'layers' ? ' active' : ''), id: 'om-tab-layers',
        text: t('tab_layers'), onclick: function () { showTab('layers'); render(); }})];
      if (cfg.api.query) {
        tabs.push(el('button', {type: 'button', class: 'om-tab' + (tab === 'results' ? ' active' : ''),
          id: 'om-tab-results', text: t('tab_results'), onclick: function () { showTab('results'); render(); }}));
      }
      var body = tab === 'results' ? queryPanel() : layerTree();
      var panel = el('aside', {class: 'om-panel'}, [el('nav', {class: 'om-tabs'}, tabs), el('div', {class: 'om-panel-body'}, [body]),
        el('footer', {class: 'om-foot', text: t('scale_note')})]);
      root.appendChild(top);
      root.appendChild(panel);
      allLayers.forEach(function (l) {
        var ll = state.layers[l.name];
        if (ll && ll.reload && state.shown[l.name]) { setStatus(l.name, ll.loadedUrl && ll.featureCount !== undefined ? 'ok' : 'loading'); }
      });
      drawLocal();
    }

    getJSON(cfg.api.regions).then(function (body) { state.regions = body.regions; render(); });
    render();
    map.invalidateSize();   // the page's layout has moved the map's container since folium sized it
    map.setView(cfg.centre, cfg.zoom);
    L.control.scale({imperial: false, position: 'bottomright'}).addTo(map);
    allLayers.forEach(function (l) { if (state.shown[l.name]) { setShown(l, true); } });
    OneMap.ready = true;
  };
})();
